//! The destination a connection had before the redirect, as linkerd2-proxy's `orig_dst.rs`
//! reads it: SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST for IPv6) from conntrack.

use std::net::SocketAddr;

use socket2::SockRef;
use tokio::net::TcpStream;

/// The pre-NAT destination, or `None` when the connection was not NATed (no conntrack
/// entry: it was made to the listener directly).
pub fn original_destination(stream: &TcpStream) -> Option<SocketAddr> {
    let sock = SockRef::from(stream);
    let local = stream.local_addr().ok()?;
    let original = if local.is_ipv4() {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    };
    original.ok()?.as_socket()
}
