//! When to run the plugin again: after a success, at half the credential's lifetime
//! (jittered, so that many controllers do not call one registry at once); after a failure,
//! with backoff, while the last good credential stays in place. All times are seconds since
//! the epoch; the caller reads the clock and draws the jitter.

use std::time::Duration;

/// Never run the plugin again sooner than this after deciding to (a plugin that answers
/// `cacheDuration: 1s` must not be run in a loop).
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// A refresh lands at least this long before the credential expires, when its lifetime is
/// long enough for that (more than twice this).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The jitter moves the refresh by up to this fraction of half the lifetime, either way.
pub const JITTER_FRACTION: f64 = 0.1;
/// The longest wait between two tries after failures.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);
/// After a failure, the last try before the last good credential expires lands at least this
/// long before it.
pub const RETRY_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// When a credential obtained at `obtained_at` and good for `lifetime` expires; `None` when
/// its lifetime is unknown (`cacheDuration: 0s`, "do not cache").
pub fn expires_at(obtained_at: i64, lifetime: Option<Duration>) -> Option<i64> {
    lifetime.map(|lifetime| obtained_at.saturating_add(secs(lifetime)))
}

/// When to run the plugin again after it answered at `obtained_at` with a credential good for
/// `lifetime` (resolved with [`super::CredentialProviderResponse::lifetime`]), seen at `now`.
///
/// - The target is half the lifetime, moved by `(2 * jitter - 1) * 10%` of that half, where
///   `jitter` is the caller's random draw in `[0, 1)` (out-of-range values are clamped).
/// - It is never later than `expiry - 5 min` when the lifetime exceeds 10 min, and never
///   later than half the lifetime otherwise (no positive jitter for short lifetimes), so it
///   always lands before the expiry.
/// - It is never sooner than `now + 30 s`. This floor wins over the expiry: a credential that
///   lives less than 30 s more is refreshed at the floor, after it expired.
/// - A lifetime of `None` ("do not cache") or under a second is refreshed at the floor: the
///   plugin said its answer is good for one pull, and the kubelet would run it for each.
pub fn next_refresh(obtained_at: i64, lifetime: Option<Duration>, jitter: f64, now: i64) -> i64 {
    let floor = now.saturating_add(secs(MIN_REFRESH_INTERVAL));
    let Some(lifetime) = lifetime.map(secs).filter(|&s| s > 0) else {
        return floor;
    };
    let half = lifetime / 2;
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let offset = ((2.0 * jitter - 1.0) * JITTER_FRACTION * half as f64).round() as i64;
    let target = obtained_at.saturating_add(half).saturating_add(offset);
    let expiry = obtained_at.saturating_add(lifetime);
    let margin = secs(EXPIRY_MARGIN);
    let ceiling = if lifetime > 2 * margin {
        expiry - margin
    } else {
        obtained_at.saturating_add(half)
    };
    target.min(ceiling).max(floor)
}

/// When to try again after `failures` consecutive failures (1 for the first), seen at `now`,
/// while the last good credential expires at `last_good_expires_at` (if known):
/// `30 s * 2^(failures - 1)`, at most 10 min; but no later than 1 min before that expiry, so
/// a last try lands while the old credential still works; and never sooner than `now + 30 s`.
pub fn retry_after_failure(failures: u32, last_good_expires_at: Option<i64>, now: i64) -> i64 {
    let base = secs(MIN_REFRESH_INTERVAL);
    let doublings = failures.saturating_sub(1).min(16);
    let delay = base
        .saturating_mul(1 << doublings)
        .min(secs(MAX_RETRY_DELAY));
    let mut at = now.saturating_add(delay);
    if let Some(expires) = last_good_expires_at {
        at = at.min(expires.saturating_sub(secs(RETRY_EXPIRY_MARGIN)));
    }
    at.max(now.saturating_add(base))
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
