//! Slow and idle clients: each deadline cuts its client off, and a flood of slow connections
//! past the connection limit neither grows the server nor starves `/healthz`. The servers here
//! have short deadlines so that the cases are quick; the tests await what the server does and
//! assert no duration.

use std::time::Duration;

use sparrow_controller::{BodyLimits, ServerLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Catalog, http_request, read_reply};

/// How many cases [`run`] and [`flood`] check.
pub const CASES: usize = 8;

const SHORT: Duration = Duration::from_millis(300);

fn short_limits() -> (ServerLimits, BodyLimits) {
    let server = ServerLimits {
        handshake_timeout: SHORT,
        header_timeout: SHORT,
        idle_timeout: SHORT,
        ..ServerLimits::default()
    };
    let body = BodyLimits {
        timeout: SHORT,
        ..BodyLimits::default()
    };
    (server, body)
}

/// Reads until the server closes; `true` if it did (within a minute, or the case fails).
async fn closed_by_server<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .is_ok()
}

pub async fn run() -> (usize, Vec<String>) {
    let (server, body) = short_limits();
    let catalog = Catalog::start_with(server, body).await;
    let mut failures = Vec::new();

    // 1. TCP only, no TLS handshake.
    let mut tcp = TcpStream::connect(catalog.addr).await.expect("connect");
    if !closed_by_server(&mut tcp).await {
        failures.push("no TLS handshake: not closed".to_owned());
    }
    // 2. Half a TLS ClientHello.
    let mut tcp = TcpStream::connect(catalog.addr).await.expect("connect");
    let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await;
    if !closed_by_server(&mut tcp).await {
        failures.push("half a ClientHello: not closed".to_owned());
    }
    // 3. TLS, then nothing.
    let mut tls = catalog.connect().await;
    if !closed_by_server(&mut tls).await {
        failures.push("TLS and no request: not closed".to_owned());
    }
    // 4. Headers that never end.
    let mut tls = catalog.connect().await;
    let _ = tls
        .write_all(
            b"POST /inject HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n",
        )
        .await;
    if !closed_by_server(&mut tls).await {
        failures.push("slow headers: not closed".to_owned());
    }
    // 5. A body that stops coming: 408 with the reason, then the connection is closed.
    let mut tls = catalog.connect().await;
    let mut partial = http_request(
        "POST",
        "/inject",
        &[
            ("content-type", "application/json"),
            ("content-length", "10000"),
        ],
        b"",
    );
    partial.extend_from_slice(b"{\"apiVersion\":");
    let _ = tls.write_all(&partial).await;
    let reply = read_reply(&mut tls).await;
    if reply.status != 408
        || !reply
            .text()
            .contains("the body did not arrive within 300 ms of the headers")
    {
        failures.push(format!(
            "slow body: got {} {:?}",
            reply.status,
            reply.text()
        ));
    }
    if reply.header("connection").as_deref() != Some("close") || !closed_by_server(&mut tls).await {
        failures.push("slow body: the connection stays open".to_owned());
    }
    // 6. An idle keep-alive connection after one answered request.
    let mut tls = catalog.connect().await;
    let _ = tls
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await;
    let reply = read_reply(&mut tls).await;
    if reply.status != 200 || !closed_by_server(&mut tls).await {
        failures.push(format!(
            "idle keep-alive: got {}, or not closed",
            reply.status
        ));
    }
    // 7. HTTP/2 negotiated, no preface ever sent: closed as idle.
    let mut tls = catalog.connect_alpn(&[b"h2"]).await;
    if !closed_by_server(&mut tls).await {
        failures.push("HTTP/2 without a preface: not closed".to_owned());
    }
    if !catalog.writes().is_empty() {
        failures.push(format!(
            "slow clients wrote to the cluster: {:?}",
            catalog.writes()
        ));
    }
    (7, failures)
}

/// More slow-body connections than the limit: the oldest are closed to make room, `/healthz`
/// is answered, nothing is written.
pub async fn flood() -> (usize, Vec<String>) {
    const LIMIT: usize = 8;
    const OPENED: usize = 3 * LIMIT;
    let server = ServerLimits {
        max_connections: LIMIT,
        ..ServerLimits::default()
    };
    let catalog = Catalog::start_with(server, BodyLimits::default()).await;
    let mut failures = Vec::new();
    let mut slow = Vec::new();
    for _ in 0..OPENED {
        let mut tls = catalog.connect().await;
        let partial = http_request(
            "POST",
            "/inject",
            &[
                ("content-type", "application/json"),
                ("content-length", "10000"),
            ],
            b"{",
        );
        tls.write_all(&partial).await.expect("headers sent");
        slow.push(tls);
    }
    let reply = catalog
        .raw(&http_request("GET", "/healthz", &[], b""))
        .await;
    if reply.status != 200 {
        failures.push(format!(
            "/healthz during a flood: got {} {:?}",
            reply.status,
            reply.text()
        ));
    }
    // All but the newest LIMIT - 1 (the probe took a place too) were closed to make room.
    let mut closed = 0;
    for tls in slow.iter_mut().take(OPENED - LIMIT) {
        if closed_by_server(tls).await {
            closed += 1;
        }
    }
    if closed != OPENED - LIMIT {
        failures.push(format!(
            "{closed} of the oldest {} slow connections were closed",
            OPENED - LIMIT
        ));
    }
    if !catalog.writes().is_empty() {
        failures.push(format!(
            "the flood wrote to the cluster: {:?}",
            catalog.writes()
        ));
    }
    (1, failures)
}
