//! The data plane end to end, as root, in network namespaces each test creates: a "pod"
//! with sparrow-init's redirect, sparrow-proxy as uid 2102 and an application, and a
//! "peer" with clients and servers (see `support::mesh`).

mod support;

use std::io::ErrorKind;
use std::sync::mpsc;

use support::mesh::{ADMIN, Mesh, POD_IP, http_get, server};
use support::traffic::{
    GREETING, HANG, connect, digest_and_reply, echo, greet, round_trip, send_and_digest,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const APP: &str = "10.77.0.1:8080";
const PEER_SERVER: &str = "10.77.0.2:9090";

fn inbound_and_outbound_go_through_the_proxy(backend: &str) {
    let mesh = Mesh::new(backend, &[]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", digest_and_reply);
    let _peer = server(&mesh.peer, "0.0.0.0:9090", digest_and_reply);

    // Inbound: the application sees the proxy (on the pod's own IP), not the peer.
    let (reply, sent) = mesh.peer.block_on(|| send_and_digest(APP, 1000));
    assert_eq!(reply, format!("{POD_IP} 1000 {sent}"));
    let metrics = mesh.await_metrics("the inbound connection closed", |m| {
        m.tcp("connections_closed", "inbound") == 1
    });
    assert_eq!(metrics.tcp("connections_opened", "inbound"), 1);
    assert_eq!(metrics.tcp("client_bytes", "inbound"), 1000);
    assert_eq!(metrics.tcp("server_bytes", "inbound"), reply.len() as u64);

    // Outbound: to the peer, through the outbound listener, without looping back into it.
    let (reply, sent) = mesh.pod.block_on(|| send_and_digest(PEER_SERVER, 2000));
    assert_eq!(reply, format!("{POD_IP} 2000 {sent}"));
    let metrics = mesh.await_metrics("the outbound connection closed", |m| {
        m.tcp("connections_closed", "outbound") == 1
    });
    assert_eq!(metrics.tcp("connections_opened", "outbound"), 1);
    assert_eq!(metrics.tcp("client_bytes", "outbound"), 2000);
    assert_eq!(metrics.tcp("server_bytes", "outbound"), reply.len() as u64);
    for direction in ["inbound", "outbound"] {
        assert_eq!(metrics.tcp("connect_errors", direction), 0, "{}", metrics.0);
    }
    assert!(
        !metrics.0.contains("sparrow_proxy_tcp_refused_total{"),
        "{}",
        metrics.0
    );
}

#[test]
fn nft_inbound_and_outbound_go_through_the_proxy() {
    inbound_and_outbound_go_through_the_proxy("nft");
}

#[test]
fn legacy_inbound_and_outbound_go_through_the_proxy() {
    inbound_and_outbound_go_through_the_proxy("legacy");
}

#[test]
fn transfers_of_100_mb_keep_their_checksum() {
    const LEN: u64 = 100 * 1024 * 1024;
    let mesh = Mesh::new("nft", &[]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", digest_and_reply);
    let _peer = server(&mesh.peer, "0.0.0.0:9090", digest_and_reply);
    let inbound = mesh.peer.spawn(|| send_and_digest(APP, LEN));
    let outbound = mesh.pod.spawn(|| send_and_digest(PEER_SERVER, LEN));
    for (task, what) in [(inbound, "inbound"), (outbound, "outbound")] {
        let (reply, sent) = task.join();
        assert_eq!(reply, format!("{POD_IP} {LEN} {sent}"), "{what}");
    }
    let metrics = mesh.await_metrics("both transfers closed", |m| {
        m.tcp("connections_closed", "inbound") == 1 && m.tcp("connections_closed", "outbound") == 1
    });
    assert_eq!(metrics.tcp("client_bytes", "inbound"), LEN);
    assert_eq!(metrics.tcp("client_bytes", "outbound"), LEN);
}

#[test]
fn half_close_is_passed_on_both_ways() {
    let mesh = Mesh::new("nft", &[]);
    // The client's half-close: the application answers only after reading EOF.
    let _app = server(&mesh.pod, "0.0.0.0:8080", digest_and_reply);
    let (reply, sent) = mesh.peer.block_on(|| send_and_digest(APP, 5));
    assert_eq!(reply, format!("{POD_IP} 5 {sent}"));

    // The server's half-close: the peer says goodbye and closes its side, the application
    // sees EOF and may still send, and the server still reads it.
    let (heard, late) = mpsc::channel::<String>();
    let _peer = server(&mesh.peer, "0.0.0.0:9090", move |mut stream, _| {
        let heard = heard.clone();
        async move {
            stream.write_all(b"bye").await.expect("write");
            stream.shutdown().await.expect("half-close");
            let mut rest = String::new();
            let _ = stream.read_to_string(&mut rest).await;
            let _ = heard.send(rest);
        }
    });
    let got = mesh.pod.block_on(|| async {
        let mut stream = connect(PEER_SERVER).await.expect("connect");
        let mut greeting = String::new();
        tokio::time::timeout(HANG, stream.read_to_string(&mut greeting))
            .await
            .expect("EOF never came")
            .expect("read");
        stream
            .write_all(b"still here")
            .await
            .expect("write after EOF");
        stream.shutdown().await.expect("half-close");
        greeting
    });
    assert_eq!(got, "bye");
    assert_eq!(
        late.recv_timeout(HANG).expect("the server heard nothing"),
        "still here"
    );
}

#[test]
fn servers_that_speak_first_are_heard_without_a_request() {
    let mesh = Mesh::new("nft", &[]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", greet);
    let _peer = server(&mesh.peer, "0.0.0.0:9090", greet);
    let read_greeting = |to: &'static str| {
        move || async move {
            let mut stream = connect(to).await.expect("connect");
            let mut buf = [0u8; GREETING.len()];
            tokio::time::timeout(HANG, stream.read_exact(&mut buf))
                .await
                .expect("no greeting")
                .expect("read");
            String::from_utf8_lossy(&buf).into_owned()
        }
    };
    assert_eq!(mesh.pod.block_on(read_greeting(PEER_SERVER)), GREETING);
    assert_eq!(mesh.peer.block_on(read_greeting(APP)), GREETING);
    let metrics = mesh.metrics();
    assert_eq!(metrics.tcp("connections_opened", "inbound"), 1);
    assert_eq!(metrics.tcp("connections_opened", "outbound"), 1);
}

#[test]
fn the_admin_port_is_not_redirected() {
    let mesh = Mesh::new("nft", &[]);
    let (live, ready) = mesh.peer.block_on(|| async {
        let live = http_get(ADMIN, "/live").await.expect("GET /live");
        let ready = http_get(ADMIN, "/ready").await.expect("GET /ready");
        (live, ready)
    });
    assert_eq!(live, (200, "live\n".to_owned()));
    assert_eq!(ready, (200, "ready\n".to_owned()));
    // Those requests (and the readiness polls before them) reached the admin server
    // directly: none went through the inbound listener.
    assert_eq!(mesh.metrics().tcp("connections_opened", "inbound"), 0);
}

#[test]
fn connections_to_the_proxy_itself_are_refused_not_looped() {
    let mesh = Mesh::new("nft", &[]);
    let closed_at_once = |to: &'static str| {
        move || async move {
            let mut stream = match connect(to).await {
                Ok(stream) => stream,
                // On a busy machine the proxy's reset can arrive before the connect is seen
                // to complete: refused at once all the same.
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return true,
                Err(error) => panic!("connect to {to}: {error}"),
            };
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(HANG, stream.read(&mut buf))
                .await
                .expect("hung");
            // Reset (or closed): nothing is forwarded.
            matches!(read, Ok(0) | Err(_))
        }
    };
    assert!(mesh.pod.block_on(closed_at_once("127.0.0.1:4140")));
    assert!(mesh.peer.block_on(closed_at_once("10.77.0.1:4143")));
    let metrics = mesh.await_metrics("both refusals", |m| {
        m.tcp("connections_closed", "inbound") == 1 && m.tcp("connections_closed", "outbound") == 1
    });
    for direction in ["inbound", "outbound"] {
        let refused = metrics.value(
            "sparrow_proxy_tcp_refused_total",
            &format!("direction=\"{direction}\",reason=\"loop\""),
        );
        assert_eq!(refused, 1, "{direction}:\n{}", metrics.0);
        assert_eq!(metrics.tcp("connect_errors", direction), 0);
    }
}

#[test]
fn with_the_proxy_killed_connections_are_refused_promptly() {
    let mut mesh = Mesh::new("nft", &[]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", echo);
    let _peer = server(&mesh.peer, "0.0.0.0:9090", echo);
    mesh.proxy.signal("KILL");
    mesh.proxy.wait();
    // The redirect stays: traffic goes to a port nobody listens on, and the kernel says so
    // at once (no hang until a timeout).
    let outbound = mesh
        .pod
        .block_on(|| async { connect(PEER_SERVER).await.map(drop) });
    let inbound = mesh
        .peer
        .block_on(|| async { connect(APP).await.map(drop) });
    for (result, what) in [(outbound, "outbound"), (inbound, "inbound")] {
        let error = result.expect_err(&format!("{what} connected without the proxy"));
        assert_eq!(
            error.kind(),
            ErrorKind::ConnectionRefused,
            "{what}: {error}"
        );
    }
}

#[test]
fn sigterm_drops_readiness_stops_accepting_and_drains() {
    let mut mesh = Mesh::new("nft", &["--shutdown-grace-period", "10m"]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", echo);
    let (to_client, client_rx) = mpsc::channel::<&'static str>();
    let (from_client, client_said) = mpsc::channel::<String>();
    // A connection open across the SIGTERM, driven step by step from the test.
    let _client = mesh.peer.spawn(move || async move {
        let mut stream = connect(APP).await.expect("connect");
        while let Ok(line) = client_rx.recv() {
            let _ = from_client.send(round_trip(&mut stream, line).await);
        }
    });
    to_client.send("before").expect("client");
    assert_eq!(client_said.recv_timeout(HANG).expect("echo"), "before");

    mesh.proxy.signal("TERM");
    mesh.peer.block_on(|| async {
        for _ in 0..1200 {
            if let Ok((503, _)) = http_get(ADMIN, "/ready").await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("/ready never turned 503");
    });
    // New connections: the listener is closed, the kernel refuses.
    let refused = mesh
        .peer
        .block_on(|| async { connect(APP).await.map(drop) });
    assert_eq!(
        refused.expect_err("accepted while draining").kind(),
        ErrorKind::ConnectionRefused
    );
    // The open one still works, and once it is closed the proxy exits cleanly.
    to_client.send("during").expect("client");
    assert_eq!(client_said.recv_timeout(HANG).expect("echo"), "during");
    drop(to_client);
    assert_eq!(mesh.proxy.wait(), Some(0));
}

#[test]
fn connections_still_open_after_the_grace_period_are_cut() {
    let mut mesh = Mesh::new("nft", &["--shutdown-grace-period", "1s"]);
    let _app = server(&mesh.pod, "0.0.0.0:8080", echo);
    let (closed, was_closed) = mpsc::channel::<bool>();
    let (opened, is_open) = mpsc::channel::<()>();
    let _client = mesh.peer.spawn(move || async move {
        let mut stream = connect(APP).await.expect("connect");
        assert_eq!(round_trip(&mut stream, "hello").await, "hello");
        let _ = opened.send(());
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(HANG, stream.read(&mut buf)).await;
        let _ = closed.send(matches!(read, Ok(Ok(0) | Err(_))));
    });
    is_open
        .recv_timeout(HANG)
        .expect("the connection never opened");
    mesh.proxy.signal("TERM");
    assert_eq!(mesh.proxy.wait(), Some(0));
    assert!(
        was_closed.recv_timeout(HANG).expect("client gone"),
        "the held connection was not closed"
    );
}
