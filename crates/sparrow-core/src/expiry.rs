//! When the registry credential expires, as far as anything knows: a date the user gives
//! (`--registry-credential-expires`: Harbor robots, ACR tokens) or the `exp` claim of a
//! password that is a JWT. Recorded as annotations on the source pull secret; `status` and the
//! controller judge it with [`ExpiryState::at`]. Nothing here ever returns or formats the
//! credential itself.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::names::{CREDENTIAL_EXPIRES_ANNOTATION, CREDENTIAL_EXPIRES_SOURCE_ANNOTATION};

/// Warn this long before the credential expires, unless told otherwise (7 days).
pub const DEFAULT_EXPIRY_WARNING: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Why a `--registry-credential-expires` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryDateError {
    /// Neither RFC 3339 nor a plain date.
    #[error(
        "--registry-credential-expires {0:?} is not a date: give RFC 3339 (2027-03-01T12:00:00Z) or a plain date (2027-03-01, midnight UTC)"
    )]
    Unparsable(String),
    /// The date has passed: storing it would only make `status` fail.
    #[error(
        "--registry-credential-expires {given} is in the past: the credential has already expired; get a new one and give its expiry date"
    )]
    InThePast {
        /// The date as RFC 3339 UTC.
        given: String,
    },
}

/// Who knows the expiry: the user's flag or the password's JWT `exp` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExpirySource {
    /// `--registry-credential-expires`.
    Flag,
    /// The `exp` claim of the password, a JWT.
    Jwt,
    /// The `cacheDuration` a credential-provider plugin answered with (or its config's
    /// `defaultCacheDuration`).
    Plugin,
}

impl ExpirySource {
    /// The annotation's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Jwt => "jwt",
            Self::Plugin => "plugin",
        }
    }
}

impl std::fmt::Display for ExpirySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the stored credential expires (seconds since the epoch, UTC) and who said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialExpiry {
    /// Seconds since the epoch.
    pub at: i64,
    /// Where it came from.
    pub source: ExpirySource,
}

impl CredentialExpiry {
    /// The annotations that record an expiry.
    pub const ANNOTATIONS: [&str; 2] = [
        CREDENTIAL_EXPIRES_ANNOTATION,
        CREDENTIAL_EXPIRES_SOURCE_ANNOTATION,
    ];

    /// `at` as RFC 3339 UTC (`2027-03-01T00:00:00Z`).
    pub fn rfc3339(&self) -> String {
        rfc3339(self.at)
    }

    /// The two annotations recording it on the source Secret.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (CREDENTIAL_EXPIRES_ANNOTATION.to_owned(), self.rfc3339()),
            (
                CREDENTIAL_EXPIRES_SOURCE_ANNOTATION.to_owned(),
                self.source.as_str().to_owned(),
            ),
        ])
    }

    /// What a Secret's annotations record; `None` when nothing (or nothing readable) is. A
    /// date written by hand without a source counts as the user's.
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> Option<Self> {
        let annotations = annotations?;
        let at = parse_rfc3339(annotations.get(CREDENTIAL_EXPIRES_ANNOTATION)?)?;
        let source = match annotations
            .get(CREDENTIAL_EXPIRES_SOURCE_ANNOTATION)
            .map(String::as_str)
        {
            Some("jwt") => ExpirySource::Jwt,
            Some("plugin") => ExpirySource::Plugin,
            _ => ExpirySource::Flag,
        };
        Some(Self { at, source })
    }
}

/// An RFC 3339 time as seconds since the epoch; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// `at` (seconds since the epoch) as RFC 3339 UTC; out-of-range values are clamped to the epoch.
pub fn rfc3339(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// Parses `--registry-credential-expires`: RFC 3339, or a plain `YYYY-MM-DD` (midnight UTC).
/// A moment not after `now` (seconds since the epoch) is refused.
pub fn parse_expiry_date(text: &str, now: i64) -> Result<i64, ExpiryDateError> {
    let text = text.trim();
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| plain_date(text))
        .ok_or_else(|| ExpiryDateError::Unparsable(text.chars().take(40).collect()))?
        .unix_timestamp();
    if at <= now {
        return Err(ExpiryDateError::InThePast { given: rfc3339(at) });
    }
    Ok(at)
}

fn plain_date(text: &str) -> Option<OffsetDateTime> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    Some(PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc())
}

/// The `exp` claim (seconds since the epoch) of `password` when it is a JWT: three base64url
/// parts whose middle one is a JSON object with a numeric `exp`. The signature is not checked:
/// the registry checks it; this only reads the date. `None` for anything else (an ordinary
/// password, a payload that is not JSON, no `exp`, a non-numeric one).
pub fn jwt_expiry(password: &str) -> Option<i64> {
    let mut parts = password.trim().split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.as_object()?.get("exp")?;
    // RFC 7519 NumericDate: a JSON number, possibly with a fraction.
    exp.as_i64()
        .or_else(|| exp.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// The expiry the source Secret should record: the user's date wins over a JWT's `exp`.
pub fn credential_expiry(flag: Option<i64>, password: Option<&str>) -> Option<CredentialExpiry> {
    flag.map(|at| CredentialExpiry {
        at,
        source: ExpirySource::Flag,
    })
    .or_else(|| {
        password.and_then(jwt_expiry).map(|at| CredentialExpiry {
            at,
            source: ExpirySource::Jwt,
        })
    })
}

/// How close the credential is to its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExpiryState {
    /// Nothing records when it expires.
    Unknown,
    /// More than the warning window left.
    Ok,
    /// Within the warning window.
    Warning,
    /// Expired: pulls with it fail.
    Expired,
}

impl ExpiryState {
    /// The state of a credential expiring at `expires` (seconds since the epoch), seen at
    /// `now`, warning `window` seconds ahead.
    pub fn at(expires: Option<i64>, now: i64, window: i64) -> Self {
        match expires {
            None => Self::Unknown,
            Some(at) if at <= now => Self::Expired,
            Some(at) if at - now <= window => Self::Warning,
            Some(_) => Self::Ok,
        }
    }

    /// Seconds from `now` until the state next changes for a credential expiring at `at`
    /// (entering the window, then expiring); `None` once expired.
    pub fn next_change(at: i64, now: i64, window: i64) -> Option<i64> {
        [at - window, at]
            .into_iter()
            .find(|&t| t > now)
            .map(|t| t - now)
    }
}

/// Remembers which thresholds were already reported for which expiry, so a Warning Event is
/// emitted once per threshold crossed (entering the window, expired), not at every look.
#[derive(Debug, Clone, Default)]
pub struct ThresholdTracker {
    /// The expiry last seen and the worst state reported for it.
    reported: Option<(i64, ExpiryState)>,
}

impl ThresholdTracker {
    /// Looks at the expiry `expires` at `now`; returns the state to report when it crossed a
    /// threshold not yet reported for this expiry (a new expiry, a rotated credential,
    /// starts afresh; a state that got better is never reported).
    pub fn observe(&mut self, expires: Option<i64>, now: i64, window: i64) -> Option<ExpiryState> {
        let state = ExpiryState::at(expires, now, window);
        let Some(at) = expires else {
            self.reported = None;
            return None;
        };
        let before = match self.reported {
            Some((seen, before)) if seen == at => before,
            _ => ExpiryState::Ok,
        };
        self.reported = Some((at, state.max(before)));
        (state > before && state >= ExpiryState::Warning).then_some(state)
    }
}

/// A short human duration: `83d 4h`, `5h 12m`, `3m 20s`, `12s`.
pub fn short_duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests;
