//! Reading what the user points us at, bounded: files must be regular files no larger than
//! their limit (a FIFO or device would hang or never end), and standard input is read up to
//! a limit within a deadline. Nothing here can hang or exhaust memory.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A registry key: a Secret holds at most 1 MiB, so no usable key is larger.
pub const MAX_KEY_BYTES: u64 = 1 << 20;
/// A password or token on standard input.
pub const MAX_PASSWORD_BYTES: u64 = 1 << 20;
/// A CA certificate bundle.
pub const MAX_CA_BYTES: u64 = 4 << 20;
/// A kubeconfig.
pub const MAX_KUBECONFIG_BYTES: u64 = 4 << 20;
/// Manifests given to `inject`.
pub const MAX_MANIFEST_BYTES: u64 = 32 << 20;

/// Why an input could not be read; each message names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("{flag} {path}: cannot read the file: {source}")]
    Io {
        /// The flag that named it.
        flag: String,
        /// The path as given.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory, FIFO, socket or device.
    #[error("{flag} {path}: is {what}, not a regular file: give the path of a file")]
    NotRegular {
        /// The flag that named it.
        flag: String,
        /// The path as given.
        path: String,
        /// What it is instead.
        what: &'static str,
    },
    /// Larger than the limit.
    #[error("{flag} {path}: larger than {limit}: {why}")]
    TooLarge {
        /// The flag that named it.
        flag: String,
        /// The path as given (`standard input` for stdin).
        path: String,
        /// The limit, for people.
        limit: String,
        /// What the limit protects.
        why: &'static str,
    },
    /// Standard input sent nothing before the deadline.
    #[error(
        "{flag}: nothing arrived on standard input within {seconds}s: pipe it in, e.g. `< password.txt`, or raise --timeout"
    )]
    StdinTimeout {
        /// The flag that reads stdin.
        flag: String,
        /// The deadline.
        seconds: u64,
    },
}

/// What a limit is, for people: `1 MiB`.
fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads the regular file at `path`, refusing other kinds of files and anything larger than
/// `limit`. The file is opened without blocking, so a FIFO cannot hang the open itself.
pub fn read_file(
    flag: &str,
    path: &Path,
    limit: u64,
    why: &'static str,
) -> Result<Vec<u8>, InputError> {
    let shown = path.display().to_string();
    let io = |source| InputError::Io {
        flag: flag.to_owned(),
        path: shown.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    check_regular(flag, &shown, &file)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge {
            flag: flag.to_owned(),
            path: shown,
            limit: human(limit),
            why,
        });
    }
    Ok(bytes)
}

/// Checks that `path` is a regular file of at most `limit` bytes, without reading it.
pub fn check_file(
    flag: &str,
    path: &Path,
    limit: u64,
    why: &'static str,
) -> Result<(), InputError> {
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| InputError::Io {
            flag: flag.to_owned(),
            path: shown.clone(),
            source,
        })?;
    check_regular(flag, &shown, &file)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(InputError::TooLarge {
            flag: flag.to_owned(),
            path: shown,
            limit: human(limit),
            why,
        });
    }
    Ok(())
}

fn check_regular(flag: &str, shown: &str, file: &File) -> Result<(), InputError> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = file
        .metadata()
        .map_err(|source| InputError::Io {
            flag: flag.to_owned(),
            path: shown.to_owned(),
            source,
        })?
        .file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(InputError::NotRegular {
        flag: flag.to_owned(),
        path: shown.to_owned(),
        what,
    })
}

/// Reads `reader` to its end, at most `limit` bytes. A reader that times out (see
/// [`StdinWithDeadline`]) becomes [`InputError::StdinTimeout`].
pub fn read_bounded(
    flag: &str,
    reader: &mut dyn Read,
    limit: u64,
    why: &'static str,
) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    match reader.take(limit + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > limit => Err(InputError::TooLarge {
            flag: flag.to_owned(),
            path: "standard input".to_owned(),
            limit: human(limit),
            why,
        }),
        Ok(_) => Ok(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
            Err(InputError::StdinTimeout {
                flag: flag.to_owned(),
                seconds: error
                    .get_ref()
                    .and_then(|e| e.to_string().parse().ok())
                    .unwrap_or(0),
            })
        }
        Err(source) => Err(InputError::Io {
            flag: flag.to_owned(),
            path: "standard input".to_owned(),
            source,
        }),
    }
}

/// Standard input (or any reader) read on its own thread, started at the first read, so a
/// source that never ends or never answers cannot hold the command past the deadline: a
/// read that would wait beyond it fails with `TimedOut`.
pub struct StdinWithDeadline {
    source: Option<Box<dyn Read + Send>>,
    chunks: Option<Receiver<std::io::Result<Vec<u8>>>>,
    pending: Vec<u8>,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl StdinWithDeadline {
    /// The process's standard input with `timeout` from the first read.
    pub fn stdin(timeout: Duration) -> Self {
        Self::new(Box::new(std::io::stdin()), timeout)
    }

    /// `source` with `timeout` from the first read.
    pub fn new(source: Box<dyn Read + Send>, timeout: Duration) -> Self {
        Self {
            source: Some(source),
            chunks: None,
            pending: Vec::new(),
            timeout,
            deadline: None,
        }
    }

    fn start(&mut self) {
        if let Some(mut source) = self.source.take() {
            let (sender, receiver) = std::sync::mpsc::sync_channel(4);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let chunk = match source.read(&mut buf) {
                        Ok(n) => Ok(buf[..n].to_vec()),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let end = !matches!(&chunk, Ok(c) if !c.is_empty());
                    if sender.send(chunk).is_err() || end {
                        return;
                    }
                }
            });
            self.deadline = Some(Instant::now() + self.timeout);
            self.chunks = Some(receiver);
        }
    }
}

impl Read for StdinWithDeadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            let seconds = self.timeout.as_secs().max(1);
            self.start();
            let deadline = self.deadline.unwrap_or_else(Instant::now);
            let wait = deadline.saturating_duration_since(Instant::now());
            let Some(receiver) = &self.chunks else {
                return Ok(0);
            };
            match receiver.recv_timeout(wait) {
                Ok(chunk) => self.pending = chunk?,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        seconds.to_string(),
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_kinds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").expect("write");
        assert_eq!(read_file("--f", &small, 3, "x").expect("read"), b"abc");
        let error = read_file("--f", &small, 2, "why").expect_err("too large");
        assert_eq!(
            error.to_string(),
            format!("--f {}: larger than 2 bytes: why", small.display())
        );
        let error = read_file("--f", dir.path(), 10, "x").expect_err("dir");
        assert!(
            error
                .to_string()
                .contains("is a directory, not a regular file"),
            "{error}"
        );
        let error = read_file("--f", Path::new("/dev/zero"), 10, "x").expect_err("device");
        assert!(error.to_string().contains("is a device"), "{error}");
        assert!(check_file("--f", &small, 2, "x").is_err());
        assert!(check_file("--f", &small, 3, "x").is_ok());
    }

    #[test]
    fn stdin_is_bounded_and_has_a_deadline() {
        let mut zeros =
            StdinWithDeadline::new(Box::new(std::io::repeat(0)), Duration::from_secs(60));
        let error = read_bounded("--s", &mut zeros, 1 << 20, "why").expect_err("endless");
        assert!(error.to_string().contains("larger than 1 MiB"), "{error}");
        let mut text = StdinWithDeadline::new(Box::new(&b"pw\n"[..]), Duration::from_secs(60));
        assert_eq!(
            read_bounded("--s", &mut text, 10, "x").expect("read"),
            b"pw\n"
        );
        // A source that never answers: the deadline ends the read.
        let (_keep, pipe) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut silent = StdinWithDeadline::new(Box::new(pipe), Duration::from_millis(50));
        let error = read_bounded("--s", &mut silent, 10, "x").expect_err("silent");
        assert!(
            error
                .to_string()
                .contains("nothing arrived on standard input within 1s"),
            "{error}"
        );
    }
}
