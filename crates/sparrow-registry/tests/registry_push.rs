//! The push against a real registry (docker-registry with htpasswd and TLS): what is written,
//! what is skipped, and what is mounted instead of uploaded; and against a registry that
//! answers manifest PUTs without a Location header, as ECR does.

use std::time::Duration;

use sparrow_core::{RegistryAuth, RegistryServer};
use sparrow_image::{
    ImageSpec, Layout, MODE_EXEC, RootFs, build_image, layout_files, write_layout,
};
use sparrow_registry::{CheckOptions, PushError, push_images};
use sparrow_registry_fixture::LocalRegistry;

const USER: &str = "robot";
const PASSWORD: &str = "pw-for-push";

/// Two images sharing one layer (the same file tree), differing in their configs.
fn twins(dir: &std::path::Path) -> Layout {
    let mut rootfs = RootFs::new();
    rootfs.file("usr/local/bin/app", vec![7u8; 64 * 1024], MODE_EXEC);
    let images: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|name| {
            build_image(&ImageSpec {
                name: name.to_owned(),
                tag: "1.0".to_owned(),
                revision: "r".to_owned(),
                source: "s".to_owned(),
                entrypoint: vec!["/usr/local/bin/app".to_owned()],
                user: "0:0".to_owned(),
                env: Vec::new(),
                rootfs: rootfs.clone(),
                epoch: 0,
            })
            .expect("builds")
        })
        .collect();
    assert_eq!(images[0].layer, images[1].layer, "the layer is shared");
    write_layout(dir, &layout_files(&images).expect("layout")).expect("write");
    Layout::open(dir).expect("opens")
}

fn options(registry: &LocalRegistry) -> CheckOptions {
    CheckOptions {
        ca_pem: Some(registry.ca_pem().to_vec()),
        timeout: Duration::from_secs(20),
        ..CheckOptions::default()
    }
}

#[tokio::test]
async fn a_shared_layer_is_mounted_and_a_second_push_writes_nothing() {
    let registry = LocalRegistry::start(&[(USER, PASSWORD)])
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = twins(dir.path());
    let (first, second) = (
        layout.image("first:1.0").expect("first"),
        layout.image("second:1.0").expect("second"),
    );
    let server = RegistryServer::parse(&format!("{}/team", registry.authority())).expect("server");
    let auth = RegistryAuth::user_password(USER, PASSWORD).expect("auth");
    let targets = [("first", &first), ("second", &second)];

    let mut lines = Vec::new();
    let pushed = push_images(
        &server,
        Some(&auth),
        &targets,
        &options(&registry),
        |image| lines.push(image.to_string()),
    )
    .await
    .expect("pushed");
    assert_eq!(lines.len(), 2);
    assert_eq!((pushed[0].blobs_uploaded, pushed[0].blobs_mounted), (2, 0));
    // The layer came from team/first by a cross-repository mount; only the config was sent.
    assert_eq!((pushed[1].blobs_uploaded, pushed[1].blobs_mounted), (1, 1));
    // Manifest by digest, index by digest, tag.
    assert_eq!(pushed[1].manifests_written, 3);
    assert_eq!(pushed[1].digest, second.digest());

    let again = push_images(&server, Some(&auth), &targets, &options(&registry), |_| {})
        .await
        .expect("pushed again");
    assert!(
        again.iter().all(|image| image.already_present()),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_refused_push_names_the_image_and_never_the_password() {
    let registry = LocalRegistry::start(&[(USER, PASSWORD)])
        .await
        .expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = twins(dir.path());
    let first = layout.image("first:1.0").expect("first");
    let server = RegistryServer::parse(&registry.authority()).expect("server");
    let wrong = RegistryAuth::user_password(USER, "not-the-password").expect("auth");
    let error = push_images(
        &server,
        Some(&wrong),
        &[("first", &first)],
        &options(&registry),
        |_| {},
    )
    .await
    .expect_err("refused");
    assert!(matches!(error, PushError::Image { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "{}/first:1.0: unauthorized: the registry refused the credentials for {}",
            registry.authority(),
            registry.authority()
        )
    );
}

/// A registry that keeps what is pushed and answers as the distribution API asks, except that
/// its manifest PUTs carry no Location header, as ECR's do. Plain HTTP, anonymous.
mod without_location {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};

    #[derive(Default)]
    pub struct Store {
        blobs: HashMap<String, Bytes>,
        /// (repository, tag or digest) -> (media type, digest, bytes).
        manifests: HashMap<(String, String), (String, String, Bytes)>,
        uploads: usize,
        /// How many manifest PUTs were answered without a Location.
        pub manifest_puts: usize,
    }

    pub type Shared = Arc<Mutex<Store>>;

    use sparrow_image::sha256_digest as digest_of;

    fn query(uri: &Uri, key: &str) -> Option<String> {
        uri.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.replace("%3A", ":").replace("%2F", "/"))
        })
    }

    fn status(code: StatusCode, headers: &[(header::HeaderName, String)]) -> Response {
        let mut response = code.into_response();
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(name.clone(), value.parse().expect("a header value"));
        }
        response
    }

    fn not_found(code: &str) -> Response {
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"not found"}}]}}"#);
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }

    pub async fn handle(
        store: axum::extract::State<Shared>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path().to_owned();
        let mut store = store.lock().expect("store");
        if path == "/v2/" {
            return (StatusCode::OK, "{}").into_response();
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let digest_header = header::HeaderName::from_static("docker-content-digest");
        if let Some((repo, upload)) = rest.split_once("/blobs/uploads/") {
            if method == Method::POST {
                if let Some(digest) = query(&uri, "mount")
                    && store.blobs.contains_key(&digest)
                {
                    let location = format!("/v2/{repo}/blobs/{digest}");
                    return status(StatusCode::CREATED, &[(header::LOCATION, location)]);
                }
                store.uploads += 1;
                let location = format!("/v2/{repo}/blobs/uploads/{}", store.uploads);
                return status(StatusCode::ACCEPTED, &[(header::LOCATION, location)]);
            }
            if method == Method::PUT && !upload.is_empty() {
                let Some(digest) = query(&uri, "digest") else {
                    return StatusCode::BAD_REQUEST.into_response();
                };
                if digest_of(&body) != digest {
                    return StatusCode::BAD_REQUEST.into_response();
                }
                store.blobs.insert(digest.clone(), body);
                let location = format!("/v2/{repo}/blobs/{digest}");
                return status(StatusCode::CREATED, &[(header::LOCATION, location)]);
            }
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        if let Some((_repo, digest)) = rest.split_once("/blobs/") {
            return match store.blobs.get(digest) {
                Some(blob) => status(
                    StatusCode::OK,
                    &[(header::CONTENT_LENGTH, blob.len().to_string())],
                ),
                None => not_found("BLOB_UNKNOWN"),
            };
        }
        let Some((repo, reference)) = rest.rsplit_once("/manifests/") else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let key = (repo.to_owned(), reference.to_owned());
        match method {
            Method::PUT => {
                let media_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let digest = digest_of(&body);
                let stored = (media_type, digest.clone(), body);
                store
                    .manifests
                    .insert((repo.to_owned(), digest.clone()), stored.clone());
                store.manifests.insert(key, stored);
                store.manifest_puts += 1;
                // 201 Created, no Location.
                status(StatusCode::CREATED, &[(digest_header, digest)])
            }
            Method::HEAD | Method::GET => match store.manifests.get(&key) {
                Some((media_type, digest, bytes)) => {
                    let mut response = Response::new(if method == Method::GET {
                        Body::from(bytes.clone())
                    } else {
                        Body::empty()
                    });
                    let h = response.headers_mut();
                    h.insert(header::CONTENT_TYPE, media_type.parse().expect("type"));
                    h.insert(digest_header, digest.parse().expect("digest"));
                    h.insert(header::CONTENT_LENGTH, bytes.len().into());
                    response
                }
                None if method == Method::HEAD => StatusCode::NOT_FOUND.into_response(),
                None => not_found("MANIFEST_UNKNOWN"),
            },
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        }
    }

    /// Serves the registry on loopback; its address and what it stored.
    pub async fn start() -> (String, Shared, tokio::task::JoinHandle<()>) {
        let store = Shared::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let authority = listener.local_addr().expect("address").to_string();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serves");
        });
        (authority, store, server)
    }
}

#[tokio::test]
async fn a_registry_that_answers_manifest_puts_without_a_location_gets_the_images() {
    let (authority, store, server) = without_location::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = twins(dir.path());
    let first = layout.image("first:1.0").expect("first");
    let registry = RegistryServer::parse(&format!("http://{authority}/team")).expect("server");
    let options = CheckOptions {
        plain_http: true,
        timeout: Duration::from_secs(20),
        ..CheckOptions::default()
    };
    let pushed = push_images(&registry, None, &[("first", &first)], &options, |_| {})
        .await
        .expect("pushed although no manifest PUT said where the manifest went");
    assert_eq!(pushed[0].digest, first.digest());
    // Manifest by digest, index by digest, tag: each answered without a Location.
    assert_eq!(pushed[0].manifests_written, 3);
    assert_eq!(store.lock().expect("store").manifest_puts, 3);
    server.abort();
}
