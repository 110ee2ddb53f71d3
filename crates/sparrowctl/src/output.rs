//! Standard output that may be closed: `sparrowctl completion bash | head -1` or a log
//! collector that went away ends the output quietly, never with a panic or an error line.
//! The command itself goes on (a deploy half done is worse than a progress line lost).

use std::io::Write as _;

/// Writes one line to stdout; a closed stdout is ignored.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
}

/// Writes `bytes` to stdout and flushes. A closed stdout (broken pipe) is success: the
/// reader took what it wanted. Other write errors are returned.
pub fn write_all(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `println!` for a stdout that may be closed.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
