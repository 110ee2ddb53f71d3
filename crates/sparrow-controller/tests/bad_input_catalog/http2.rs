//! HTTP/2: a refusal is a complete, readable response, followed (when the client is still
//! sending after the server's short drain) by `RST_STREAM NO_ERROR`, never a reset the client
//! reports as an error; curl prints the 413 of a 4 MiB review.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};

use crate::support::{Catalog, REVIEW};

/// How many cases [`run`] checks.
pub const CASES: usize = 8;

enum Send {
    /// The whole body, then the end of the stream.
    Whole(Vec<u8>),
    /// A declared Content-Length, then this many bytes, and the stream left open.
    Declared { length: u64, sent: usize },
    /// This many bytes without a Content-Length, the stream left open.
    Growing(usize),
}

struct Reply {
    status: u16,
    text: String,
    /// The server's RST_STREAM after its response, when the body was left open.
    reset: Option<h2::Reason>,
}

async fn exchange(
    catalog: &Catalog,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    send: Send,
) -> Result<Reply, String> {
    let tls = catalog.connect_alpn(&[b"h2"]).await;
    let (client, connection) = h2::client::handshake(tls)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("https://127.0.0.1{path}"));
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    if let Send::Declared { length, .. } = &send {
        builder = builder.header("content-length", length.to_string());
    }
    let request = builder.body(()).map_err(|e| e.to_string())?;
    let mut client = client
        .ready()
        .await
        .map_err(|e| format!("not ready: {e}"))?;
    let headers_only = matches!(&send, Send::Whole(body) if body.is_empty());
    let (response, mut stream) = client
        .send_request(request, headers_only)
        .map_err(|e| format!("send: {e}"))?;
    let left_open = match send {
        Send::Whole(_) if headers_only => false,
        Send::Whole(body) => {
            stream
                .send_data(Bytes::from(body), true)
                .map_err(|e| format!("data: {e}"))?;
            false
        }
        Send::Declared { sent, .. } | Send::Growing(sent) => {
            // Queued: h2 sends it as the server's flow-control window allows.
            stream
                .send_data(Bytes::from(vec![b' '; sent]), false)
                .map_err(|e| format!("data: {e}"))?;
            true
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(60), response)
        .await
        .map_err(|_| "no response within 60 s".to_owned())?
        .map_err(|e| format!("the response is a stream error: {e}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("the body is a stream error: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    let reset = if left_open {
        let reset = tokio::time::timeout(
            Duration::from_secs(60),
            futures::future::poll_fn(|cx| stream.poll_reset(cx)),
        )
        .await
        .map_err(|_| "no RST_STREAM after the response".to_owned())?
        .map_err(|e| format!("poll_reset: {e}"))?;
        Some(reset)
    } else {
        None
    };
    Ok(Reply {
        status,
        text: String::from_utf8_lossy(&text).into_owned(),
        reset,
    })
}

fn expect(
    failures: &mut Vec<String>,
    name: &str,
    got: Result<Reply, String>,
    status: u16,
    text: &str,
    reset: Option<h2::Reason>,
) {
    match got {
        Ok(reply)
            if reply.status == status && reply.text.contains(text) && reply.reset == reset => {}
        Ok(reply) => failures.push(format!(
            "{name}: want {status} {text:?} reset {reset:?}, got {} {:?} reset {:?}",
            reply.status, reply.text, reply.reset
        )),
        Err(error) => failures.push(format!("{name}: {error}")),
    }
}

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    send: Send,
    status: u16,
    text: &'static str,
    reset: Option<h2::Reason>,
}

fn post(
    name: &'static str,
    content_type: Option<&'static str>,
    send: Send,
    status: u16,
    text: &'static str,
) -> Case {
    let reset = match send {
        Send::Whole(_) => None,
        _ => Some(h2::Reason::NO_ERROR),
    };
    Case {
        name,
        method: Method::POST,
        path: "/inject",
        content_type,
        send,
        status,
        text,
        reset,
    }
}

pub async fn run(catalog: &Catalog) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let json = Some("application/json");
    let review = || Send::Whole(REVIEW.as_bytes().to_vec());
    let cases = [
        post(
            "h2: a review",
            json,
            review(),
            200,
            "\"patchType\":\"JSONPatch\"",
        ),
        Case {
            name: "h2: GET /healthz",
            method: Method::GET,
            path: "/healthz",
            content_type: None,
            send: Send::Whole(Vec::new()),
            status: 200,
            text: "ok",
            reset: None,
        },
        post(
            "h2: bad JSON",
            json,
            Send::Whole(b"{".to_vec()),
            400,
            "the body is not an AdmissionReview",
        ),
        post(
            "h2: no content type",
            None,
            review(),
            415,
            "has no readable Content-Type",
        ),
        post(
            "h2: 4 MiB declared, 64 KiB sent",
            json,
            Send::Declared {
                length: 4 << 20,
                sent: 64 << 10,
            },
            413,
            "the declared body of 4194304 bytes is larger",
        ),
        post(
            "h2: 4 MiB sent without a length",
            json,
            Send::Growing(4 << 20),
            413,
            "larger than the 3145728-byte limit for an AdmissionReview",
        ),
    ];
    for case in cases {
        catalog.cluster.reset_requests();
        let got = exchange(
            catalog,
            case.method,
            case.path,
            case.content_type,
            case.send,
        )
        .await;
        expect(
            &mut failures,
            case.name,
            got,
            case.status,
            case.text,
            case.reset,
        );
        if !catalog.writes().is_empty() {
            failures.push(format!("{}: wrote to the cluster", case.name));
        }
    }
    for http2 in [true, false] {
        if let Err(error) = curl_four_mib(catalog, http2).await {
            failures.push(error);
        }
    }
    (CASES, failures)
}

/// `curl` posting a 4 MiB review reports the 413 and its message, and exits 0.
async fn curl_four_mib(catalog: &Catalog, http2: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let body = dir.path().join("review.json");
    let mut big = REVIEW.as_bytes().to_vec();
    big.resize(4 << 20, b' ');
    std::fs::write(&body, big).map_err(|e| e.to_string())?;
    let version = if http2 { "--http2" } else { "--http1.1" };
    let output = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            version,
            "-H",
            "content-type: application/json",
            "-w",
            "\n%{http_code} %{http_version}\n",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("https://127.0.0.1:{}/inject", catalog.addr.port()))
        .output()
        .await
        .map_err(|e| format!("curl cannot run ({e}): apt-get install -y curl"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let want_version = if http2 { "413 2" } else { "413 1.1" };
    if output.status.success()
        && stdout.contains(want_version)
        && stdout.contains("3145728-byte limit for an AdmissionReview")
    {
        Ok(())
    } else {
        Err(format!(
            "curl {version} with 4 MiB: exit {}, stdout {stdout:?}, stderr {:?}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
