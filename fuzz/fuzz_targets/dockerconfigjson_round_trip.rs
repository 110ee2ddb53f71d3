//! Credentials -> `.dockerconfigjson` -> JSON: whatever the user name, password or key, the
//! bytes are valid JSON that reads back to exactly the registry key, user name and password
//! given, and `auth` is base64 of `user:password`.

#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use sparrow_core::{RegistryAuth, RegistryServer, dockerconfigjson};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // "server \0 user \0 password"; a missing user means a JSON key.
    let mut fields = text.splitn(3, '\0');
    let server = RegistryServer::parse(fields.next().unwrap_or_default())
        .unwrap_or_default();
    let auth = match (fields.next(), fields.next()) {
        (Some(user), Some(password)) => RegistryAuth::user_password(user, password),
        (Some(key), None) => RegistryAuth::json_key(key),
        _ => return,
    };
    let Ok(auth) = auth else {
        return;
    };
    let bytes = dockerconfigjson(&server, &auth);
    let json: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
    let auths = json["auths"].as_object().expect("auths");
    assert_eq!(auths.len(), 1);
    let entry = &auths[&server.auth_key()];
    assert_eq!(entry["username"].as_str(), Some(auth.username()));
    assert_eq!(entry["password"].as_str(), Some(auth.password()));
    let basic = STANDARD
        .decode(entry["auth"].as_str().expect("auth"))
        .expect("base64");
    assert_eq!(
        basic,
        format!("{}:{}", auth.username(), auth.password()).into_bytes()
    );
});
