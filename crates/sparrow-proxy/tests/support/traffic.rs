//! Servers and clients for the tests, each meant to run on a namespace's thread.

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A guard against hanging forever: far longer than any step needs on a loaded machine,
/// and only ever reached when something is broken.
pub const HANG: Duration = Duration::from_secs(120);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Binds `addr`, says so on `bound`, then serves each connection with `handle` (one task
/// per connection).
pub async fn serve<F, Fut>(addr: &str, handle: F, bound: std::sync::mpsc::Sender<()>)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let listener = TcpListener::bind(self::addr(addr))
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let _ = bound.send(());
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, peer) = listener.accept().await.expect("accept");
                tokio::task::spawn_local(handle(stream, peer));
            }
        })
        .await;
}

/// Reads to EOF, then answers `<peer address> <bytes read> <sha256 hex>` and closes: the
/// reply comes only after the half-close.
pub async fn digest_and_reply(mut stream: TcpStream, peer: SocketAddr) {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
        }
    }
    let reply = format!("{} {total} {:x}", peer.ip(), hasher.finalize());
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What [`greet`] says.
pub const GREETING: &str = "220 sparrow.test ESMTP ready\r\n";

/// Speaks first, as SMTP does: a greeting before reading anything.
pub async fn greet(mut stream: TcpStream, _peer: SocketAddr) {
    let _ = stream.write_all(GREETING.as_bytes()).await;
    let mut buf = [0u8; 64];
    let _ = stream.read(&mut buf).await;
}

/// `len` bytes of a fixed pseudo-random sequence (xorshift), in chunks.
pub struct Payload {
    state: u64,
    left: u64,
}

impl Payload {
    pub fn new(len: u64) -> Self {
        Self {
            state: 0x9e37_79b9_7f4a_7c15,
            left: len,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        n
    }
}

/// Sends `len` bytes of [`Payload`] to `to`, half-closes, and returns the server's reply
/// with the sha256 the client computed of what it sent.
pub async fn send_and_digest(to: &str, len: u64) -> (String, String) {
    let mut stream = tokio::time::timeout(HANG, TcpStream::connect(addr(to)))
        .await
        .expect("connect hung")
        .unwrap_or_else(|e| panic!("connect {to}: {e}"));
    let mut payload = Payload::new(len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = payload.fill(&mut buf);
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        stream.write_all(&buf[..n]).await.expect("write");
    }
    stream.shutdown().await.expect("half-close");
    let mut reply = String::new();
    tokio::time::timeout(HANG, stream.read_to_string(&mut reply))
        .await
        .expect("reply hung")
        .expect("read reply");
    (reply, format!("{:x}", hasher.finalize()))
}

/// Echoes what it reads until EOF, then closes.
pub async fn echo(mut stream: TcpStream, _peer: SocketAddr) {
    let (mut read, mut write) = stream.split();
    let _ = tokio::io::copy(&mut read, &mut write).await;
    let _ = write.shutdown().await;
}

/// Connects to `to` (with a guard against hanging).
pub async fn connect(to: &str) -> std::io::Result<TcpStream> {
    tokio::time::timeout(HANG, TcpStream::connect(addr(to)))
        .await
        .unwrap_or_else(|_| panic!("connecting to {to} hung"))
}

/// Writes `line` and reads back as many bytes (with a guard against hanging).
pub async fn round_trip(stream: &mut TcpStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; line.len()];
    tokio::time::timeout(HANG, stream.read_exact(&mut buf))
        .await
        .expect("reply hung")
        .expect("read reply");
    String::from_utf8_lossy(&buf).into_owned()
}
