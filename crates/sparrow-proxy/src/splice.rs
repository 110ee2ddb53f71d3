//! Zero-copy forwarding: each direction of a connection moves bytes socket -> pipe -> socket
//! with splice(2), so the payload never enters the proxy's memory. A pipe holds at most
//! [`PIPE_CAPACITY`] bytes in the kernel (pages the sockets' buffers lend it, not the proxy's
//! own memory); the proxy's own footprint stays a few hundred bytes per connection however fast
//! the traffic.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The capacity a pipe grows to once its connection carries bulk traffic (one splice moved
/// half the default or more), and so the most one splice call moves then. Four times the
/// default quarters the system calls and wake-ups per byte. Pipe pages count against a per-user
/// limit (`fs.pipe-user-pages-soft`), past which new pipes get two pages, so request/response
/// connections keep the default; where the kernel refuses, a pipe keeps what it has.
const PIPE_CAPACITY: usize = 256 * 1024;

/// What a pipe holds unless told otherwise (16 pages).
const DEFAULT_PIPE_CAPACITY: usize = 64 * 1024;

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
    let mut chunk = DEFAULT_PIPE_CAPACITY;
    let mut grown = false;
    let mut total = 0u64;
    loop {
        // The pipe is empty here: fill it from the socket.
        let filled = from
            .async_io(Interest::READABLE, || {
                splice_nonblocking(from.as_fd(), pipe_in.as_fd(), chunk)
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
        // Half the default pipe in one call: this connection moves more than requests.
        let bulk = filled >= DEFAULT_PIPE_CAPACITY / 2;
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
        if bulk && !grown {
            // Empty again, so it can be resized.
            chunk = grow(&pipe_in);
            grown = true;
        }
    }
}

/// A pipe whose two ends never block: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Grows an empty pipe to [`PIPE_CAPACITY`] where the kernel allows it; returns how much one
/// splice asks for from now on (a pipe smaller than that simply takes less per call).
fn grow(pipe: &OwnedFd) -> usize {
    match fcntl(
        pipe,
        FcntlArg::F_SETPIPE_SZ(PIPE_CAPACITY as nix::libc::c_int),
    ) {
        Ok(size) => size as usize,
        Err(error) => {
            tracing::debug!(%error, "pipe capacity not raised");
            DEFAULT_PIPE_CAPACITY
        }
    }
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
