//! Go's `time.Duration` text (`12h`, `1h30m`, `12h0m0s`, `500ms`, `0s`), as the kubelet reads
//! `defaultCacheDuration` and a plugin writes `cacheDuration`.
//!
//! Our own parser rather than `humantime` (a workspace dependency): humantime accepts more
//! than Go (`2d`, `1y`, `1M` for a month, `1 hour`), so a config it accepts could be one the
//! kubelet refuses, and it refuses signs, which Go accepts. Exactly Go's grammar keeps "the
//! kubelet takes this file" and "Sparrow takes this file" the same statement.

use std::time::Duration;

/// The longest duration Go can hold (`math.MaxInt64` nanoseconds, about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a duration text was refused. The text is shown (at most 40 characters): durations
/// are configuration, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    /// Not Go's duration grammar.
    #[error(
        "{0:?} is not a duration: write it as Go does, a number and a unit (h, m, s, ms, us, ns) repeated, such as 12h, 30m, 1h30m or 10s"
    )]
    Invalid(String),
    /// A negative duration.
    #[error("{0:?} is negative: a cache duration is 0s or more")]
    Negative(String),
    /// More than Go's `time.Duration` holds.
    #[error("{0:?} is too long: Go durations hold at most 2562047h")]
    TooLong(String),
}

/// Parses a Go duration: an optional sign, then one or more of a decimal number (fraction
/// allowed) and a unit among `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`; `0` alone is zero.
/// Negative durations are refused (nothing here has a use for one).
pub fn parse_go_duration(text: &str) -> Result<Duration, GoDurationError> {
    let shown = || text.chars().take(40).collect::<String>();
    let invalid = || GoDurationError::Invalid(shown());
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after) = rest.split_at(int_len);
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(after) => {
                let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(frac_len)
            }
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(at, _)| at);
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let too_long = || GoDurationError::TooLong(shown());
        // More digits than any u128 holds are too long anyway; leading zeros aside, 30 do.
        let int: u128 = if int_digits.is_empty() {
            0
        } else {
            let significant = int_digits.trim_start_matches('0');
            if significant.len() > 30 {
                return Err(too_long());
            }
            significant.parse().unwrap_or(0)
        };
        // Go keeps the fraction's leading digits and drops what is below a nanosecond.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac: u128 = frac_digits.parse().unwrap_or(0);
        let scale = 10u128.pow(frac_digits.len() as u32);
        let value = int
            .checked_mul(unit_nanos)
            .and_then(|v| v.checked_add(frac * unit_nanos / scale))
            .ok_or_else(too_long)?;
        total = total.checked_add(value).ok_or_else(too_long)?;
        if total > MAX_NANOS {
            return Err(too_long());
        }
        rest = after;
    }
    if negative && total > 0 {
        return Err(GoDurationError::Negative(shown()));
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Formats as Go's `Duration.String()`: `12h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`.
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos().min(MAX_NANOS);
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}\u{b5}s", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    let minutes = nanos / 60_000_000_000 % 60;
    let hours = nanos / 3_600_000_000_000;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// `value / unit` with its fraction, trailing zeros trimmed (`1.5`, `2`).
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
