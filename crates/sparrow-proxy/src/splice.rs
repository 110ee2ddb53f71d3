//! Zero-copy forwarding: each direction of a connection moves bytes socket -> pipe -> socket
//! with splice(2), so the payload never enters the proxy's memory. A pipe holds at most
//! [`PIPE_CHUNK`] bytes in the kernel; the proxy's own footprint stays a few hundred bytes per
//! connection however fast the traffic.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, splice};
use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The most one splice call moves: the default pipe capacity (16 pages).
const PIPE_CHUNK: usize = 64 * 1024;

/// Copies both directions until each side has sent its EOF, passing each EOF on as a shutdown
/// of the other side's write half (half-close). `client_read` and `server_read` count the
/// bytes read from each side. Returns the bytes moved client -> server and server -> client.
pub async fn bidirectional(
    client: &TcpStream,
    server: &TcpStream,
    client_read: Counter,
    server_read: Counter,
) -> io::Result<(u64, u64)> {
    tokio::try_join!(
        one_way(client, server, client_read),
        one_way(server, client, server_read)
    )
}

/// Moves bytes `from` -> `to` until `from` reaches EOF, then shuts down `to`'s write half.
async fn one_way(from: &TcpStream, to: &TcpStream, read: Counter) -> io::Result<u64> {
    let (pipe_out, pipe_in) = pipe()?;
    let mut total = 0u64;
    loop {
        // The pipe is empty here: fill it from the socket.
        let filled = from
            .async_io(Interest::READABLE, || {
                splice_nonblocking(from.as_fd(), pipe_in.as_fd(), PIPE_CHUNK)
            })
            .await?;
        if filled == 0 {
            // EOF: pass it on. A peer that has already gone is not an error for this side.
            match socket2::SockRef::from(to).shutdown(Shutdown::Write) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotConnected => {}
                Err(error) => return Err(error),
            }
            return Ok(total);
        }
        read.inc_by(filled as u64);
        // Drain it into the other socket, as fast as that one takes it.
        let mut left = filled;
        while left > 0 {
            let sent = to
                .async_io(Interest::WRITABLE, || {
                    splice_nonblocking(pipe_out.as_fd(), to.as_fd(), left)
                })
                .await?;
            if sent == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the destination accepted no bytes",
                ));
            }
            left -= sent;
        }
        total += filled as u64;
    }
}

/// A pipe whose two ends never block: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// One splice(2) that never blocks; `WouldBlock` tells tokio to wait for readiness again.
fn splice_nonblocking(
    from: std::os::fd::BorrowedFd<'_>,
    to: std::os::fd::BorrowedFd<'_>,
    len: usize,
) -> io::Result<usize> {
    loop {
        match splice(
            from,
            None,
            to,
            None,
            len,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
        ) {
            Err(Errno::EINTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}
