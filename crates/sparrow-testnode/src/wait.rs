//! Awaiting a condition on the node: polled until it holds, with a generous bound so a busy
//! machine is slow, never flaky.

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, and returns that. After `limit` the test fails, naming
/// `what` it was waiting for.
pub fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
