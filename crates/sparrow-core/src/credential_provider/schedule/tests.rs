use std::time::Duration;

use proptest::prelude::*;

use super::*;

const T0: i64 = 1_800_000_000;
const HOUR: u64 = 3_600;

fn lifetime(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

#[test]
fn a_refresh_lands_at_half_the_lifetime_moved_by_the_jitter() {
    let twelve_hours = lifetime(12 * HOUR);
    assert_eq!(next_refresh(T0, twelve_hours, 0.5, T0), T0 + 6 * 3600);
    // ±10% of the half: ±36 min.
    assert_eq!(
        next_refresh(T0, twelve_hours, 0.0, T0),
        T0 + 6 * 3600 - 2160
    );
    assert_eq!(
        next_refresh(T0, twelve_hours, 0.999_999, T0),
        T0 + 6 * 3600 + 2160
    );
    assert_eq!(expires_at(T0, twelve_hours), Some(T0 + 12 * 3600));
    assert_eq!(expires_at(T0, None), None);
}

#[test]
fn a_refresh_stays_five_minutes_before_expiry_and_short_lifetimes_stay_at_half() {
    // 11 min: half plus 10% is 363 s, but expiry minus 5 min is 360 s.
    assert_eq!(next_refresh(T0, lifetime(660), 0.999, T0), T0 + 360);
    // 10 min and less: never past half.
    assert_eq!(next_refresh(T0, lifetime(600), 0.999, T0), T0 + 300);
    assert_eq!(next_refresh(T0, lifetime(600), 0.0, T0), T0 + 270);
    assert_eq!(next_refresh(T0, lifetime(120), 0.999, T0), T0 + 60);
}

#[test]
fn a_refresh_is_never_sooner_than_thirty_seconds_from_now() {
    assert_eq!(next_refresh(T0, lifetime(40), 0.5, T0), T0 + 30);
    assert_eq!(next_refresh(T0, None, 0.5, T0), T0 + 30);
    assert_eq!(
        next_refresh(T0, Some(Duration::from_millis(500)), 0.5, T0),
        T0 + 30
    );
    // Read back after a restart, long after the refresh was due.
    assert_eq!(
        next_refresh(T0, lifetime(12 * HOUR), 0.5, T0 + 7 * 3600),
        T0 + 7 * 3600 + 30
    );
    // Jitter out of range is clamped, NaN is none.
    assert_eq!(
        next_refresh(T0, lifetime(12 * HOUR), 7.0, T0),
        T0 + 6 * 3600 + 2160
    );
    assert_eq!(
        next_refresh(T0, lifetime(12 * HOUR), f64::NAN, T0),
        T0 + 6 * 3600
    );
}

#[test]
fn failures_back_off_to_ten_minutes_but_retry_before_the_old_credential_expires() {
    let delays: Vec<i64> = (1..=7)
        .map(|n| retry_after_failure(n, None, T0) - T0)
        .collect();
    assert_eq!(delays, [30, 60, 120, 240, 480, 600, 600]);
    assert_eq!(retry_after_failure(0, None, T0), T0 + 30);
    assert_eq!(retry_after_failure(u32::MAX, None, T0), T0 + 600);
    // The old credential expires in 5 min: the last try lands 1 min before.
    assert_eq!(retry_after_failure(6, Some(T0 + 300), T0), T0 + 240);
    // Expiring within the floor, or expired: the floor.
    assert_eq!(retry_after_failure(6, Some(T0 + 60), T0), T0 + 30);
    assert_eq!(retry_after_failure(6, Some(T0 - 60), T0), T0 + 30);
}

proptest! {
    #[test]
    fn refresh_invariants(
        lifetime_secs in 0u64..40 * 86_400,
        jitter in 0.0f64..1.0,
        elapsed in 0i64..50 * 86_400,
    ) {
        let now = T0 + elapsed;
        let life = lifetime(lifetime_secs);
        let at = next_refresh(T0, life, jitter, now);
        prop_assert!(at >= now + 30, "sooner than the floor");
        let expiry = T0 + lifetime_secs as i64;
        if lifetime_secs > 0 && now + 30 < expiry {
            prop_assert!(at < expiry, "at or after expiry");
        }
        if lifetime_secs > 600 && now + 30 <= expiry - 300 {
            prop_assert!(at <= expiry - 300, "within five minutes of expiry");
        }
        let half = (lifetime_secs / 2) as i64;
        if now + 30 < T0 + half - half / 10 {
            prop_assert!((at - (T0 + half)).abs() <= half / 10 + 1, "jitter beyond 10%");
        }
    }

    #[test]
    fn retry_invariants(failures in 0u32..100, expires_in in proptest::option::of(-3_600i64..86_400), elapsed in 0i64..3_600) {
        let now = T0 + elapsed;
        let expires = expires_in.map(|e| now + e);
        let at = retry_after_failure(failures, expires, now);
        prop_assert!(at >= now + 30);
        prop_assert!(at <= now + 600);
        if let Some(expires) = expires && expires - 60 >= now + 30 {
            prop_assert!(at <= expires - 60);
        }
    }
}
