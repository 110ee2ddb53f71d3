//! `--registry-server` and image references: whatever the text, parsing never panics; a
//! server that parses prints back to text that parses to the same server, its images are
//! valid image references (or refused as too long), and no refusal echoes user information.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparrow_core::RegistryServer;
use sparrow_core::image_ref::validate_image_ref;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = validate_image_ref(text);
    match RegistryServer::parse(text) {
        Ok(server) => {
            let printed = server.to_string();
            let again = RegistryServer::parse(&printed).expect("a printed server parses");
            assert_eq!(again, server, "{printed:?}");
            assert!(!server.auth_key().is_empty());
            let image = server.image("sparrow-proxy", "0.1.0");
            if let Err(error) = validate_image_ref(&image) {
                assert!(image.len() > 255, "{image:?}: {error}");
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "{message:?}");
            // A password pasted as user information (before the host, so in the part before
            // the first `/` after any scheme) is never shown back.
            let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
            let authority = rest.split('/').next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@')
                && let Some((_, password)) = userinfo.rsplit_once(':')
                && password.len() >= 8
                // (a password whose text also stands after the `@`, as written or as the
                // message escapes it, may be shown as part of it: `\0PPP` shows `0PPP`)
                && !rest[userinfo.len() + 1..].contains(password)
                && !rest[userinfo.len() + 1..].escape_debug().to_string().contains(password)
                && !password.contains(['/', '@', '"', '\\'])
                && !text.contains("sha256")
            {
                assert!(!message.contains(password), "{message:?}");
            }
        }
    }
});
