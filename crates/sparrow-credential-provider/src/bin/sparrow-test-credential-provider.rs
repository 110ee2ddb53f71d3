//! A kubelet credential-provider plugin for tests, speaking the real protocol
//! (`credentialprovider.kubelet.k8s.io/v1`): it reads a `CredentialProviderRequest` on stdin
//! and answers a `CredentialProviderResponse` on stdout, so a real kubelet can run it too
//! (`--image-credential-provider-config`). It shares no code with the runner it tests: its
//! JSON is written here by hand.
//!
//! Arguments (as a provider's `args`):
//! - `--credential-file PATH`: a file holding `username:password`, the credential answered
//!   (or the variable `SPARROW_TEST_CREDENTIAL_FILE`, as a provider's `env` sets it).
//! - `--cache-key-type Image|Registry|Global` (default `Registry`): `Registry` and `Global`
//!   answer under the image's host (`HOST[:PORT]`), `Image` under its repository (the image
//!   without tag or digest).
//! - `--cache-duration D`: the `cacheDuration` answered, as given; none by default (the
//!   config's default then applies).
//! - `--token-file PATH`: service-account token mode: the request's `serviceAccountToken`
//!   must equal this file's text, or the plugin fails.
//! - `--pid-file PATH`: the plugin writes its process id there first.
//! - `--fault-file PATH`: when the file exists and holds `fail` (exit 1), `hang` (never
//!   answers), `flood` (prints 10 MiB), `wrong-api-version` (answers v1beta1) or `garbage`
//!   (prints no JSON), the plugin misbehaves so; otherwise it answers. Tests switch faults on
//!   and off by writing the file, without changing the config.
//!
//! A PATH may also be `http://HOST:PORT/PATH`: the plugin then GETs it (a 404 counts as a
//! missing file), so a test can change what the plugin answers inside a pod, where it has no
//! file of the test's, by rewriting a file a plain HTTP server serves.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
const NAME: &str = "sparrow-test-credential-provider";

#[derive(Default)]
struct Args {
    credential_file: Option<String>,
    cache_key_type: Option<String>,
    cache_duration: Option<String>,
    token_file: Option<String>,
    pid_file: Option<String>,
    fault_file: Option<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{NAME}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if let Some(pid_file) = &args.pid_file {
        std::fs::write(pid_file, std::process::id().to_string())
            .map_err(|e| format!("cannot write {pid_file}: {e}"))?;
    }
    let fault = match &args.fault_file {
        Some(path) => read(path)
            .map(|text| text.trim().to_owned())
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut api_version = API_VERSION;
    match fault.as_str() {
        "" => {}
        "fail" => return Err("fault injected: fail".to_owned()),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "flood" => {
            let chunk = vec![b'x'; 1 << 20];
            let mut stdout = std::io::stdout().lock();
            for _ in 0..10 {
                // The reader may stop reading and kill us: nothing to report then.
                if stdout.write_all(&chunk).is_err() {
                    break;
                }
            }
            return Ok(());
        }
        "garbage" => {
            println!("this is not a CredentialProviderResponse");
            return Ok(());
        }
        "wrong-api-version" => api_version = "credentialprovider.kubelet.k8s.io/v1beta1",
        other => return Err(format!("unknown fault {other:?} in the fault file")),
    }

    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the request on stdin: {e}"))?;
    let request: serde_json::Value = serde_json::from_str(&input)
        .map_err(|e| format!("the request on stdin is not JSON: {e}"))?;
    if request["apiVersion"] != API_VERSION || request["kind"] != "CredentialProviderRequest" {
        return Err(format!(
            "the request is not a {API_VERSION} CredentialProviderRequest"
        ));
    }
    let image = request["image"]
        .as_str()
        .filter(|image| !image.is_empty())
        .ok_or("the request has no image")?;
    if let Some(token_file) = &args.token_file {
        let expected = std::fs::read_to_string(token_file)
            .map_err(|e| format!("cannot read {token_file}: {e}"))?;
        if request["serviceAccountToken"].as_str() != Some(expected.trim()) {
            return Err(
                "the request's serviceAccountToken is missing or not the expected one".to_owned(),
            );
        }
    }

    let credential_file = args
        .credential_file
        .or_else(|| std::env::var("SPARROW_TEST_CREDENTIAL_FILE").ok())
        .ok_or("no --credential-file and no SPARROW_TEST_CREDENTIAL_FILE")?;
    let credential =
        read(&credential_file).map_err(|e| format!("cannot read {credential_file}: {e}"))?;
    let (username, password) = credential
        .trim_end_matches(['\n', '\r'])
        .split_once(':')
        .ok_or_else(|| format!("{credential_file} does not hold username:password"))?;

    let cache_key_type = args.cache_key_type.as_deref().unwrap_or("Registry");
    let key = match cache_key_type {
        "Registry" | "Global" => host(image),
        "Image" => repository(image),
        other => return Err(format!("unknown --cache-key-type {other:?}")),
    };
    let mut response = serde_json::json!({
        "apiVersion": api_version,
        "kind": "CredentialProviderResponse",
        "cacheKeyType": cache_key_type,
        "auth": { key: { "username": username, "password": password } },
    });
    if let Some(duration) = args.cache_duration {
        response["cacheDuration"] = duration.into();
    }
    println!("{response}");
    Ok(())
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--credential-file" => args.credential_file = Some(value()?),
            "--cache-key-type" => args.cache_key_type = Some(value()?),
            "--cache-duration" => args.cache_duration = Some(value()?),
            "--token-file" => args.token_file = Some(value()?),
            "--pid-file" => args.pid_file = Some(value()?),
            "--fault-file" => args.fault_file = Some(value()?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

/// `HOST[:PORT]` of an image; Docker Hub for a name without one (`nginx`, `library/nginx`).
fn host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

/// The image without its tag or digest.
fn repository(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last_slash = image.rfind('/').map_or(0, |at| at + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => image[..last_slash + colon].to_owned(),
        None => image.to_owned(),
    }
}

/// The text of `path`: a file, or what a GET of an `http://` URL answers with 200.
fn read(path: &str) -> std::io::Result<String> {
    let Some(rest) = path.strip_prefix("http://") else {
        return std::fs::read_to_string(path);
    };
    // Plain HTTP/1.0 against a test's own server: no library is worth a dependency here.
    let (authority, resource) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /{resource} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    match status {
        "200" => Ok(body.to_owned()),
        "404" => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{path} answered 404"),
        )),
        other => Err(std::io::Error::other(format!("{path} answered {other}"))),
    }
}
