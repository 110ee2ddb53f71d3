use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

/// 2027-03-01T00:00:00Z.
const MARCH_2027: i64 = 1_803_859_200;
/// 2026-12-07T00:00:00Z.
const NOW: i64 = 1_796_601_600;
const WEEK: i64 = 7 * 86_400;

fn jwt(payload: &str) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[test]
fn a_plain_date_is_midnight_utc_and_rfc3339_is_taken_as_written() {
    assert_eq!(parse_expiry_date("2027-03-01", NOW), Ok(MARCH_2027));
    assert_eq!(
        parse_expiry_date("2027-03-01T02:00:00+02:00", NOW),
        Ok(MARCH_2027)
    );
    assert_eq!(
        parse_expiry_date("2027-03-01T00:00:10Z", NOW),
        Ok(MARCH_2027 + 10)
    );
    assert_eq!(rfc3339(MARCH_2027), "2027-03-01T00:00:00Z");
}

#[test]
fn a_date_that_is_not_one_is_refused_with_the_forms_accepted() {
    for text in [
        "tomorrow",
        "2027-3-1",
        "2027-02-30",
        "01/03/2027",
        "",
        "2027-03-01-01",
    ] {
        let error = parse_expiry_date(text, NOW).expect_err(text);
        assert!(matches!(error, ExpiryDateError::Unparsable(_)), "{text}");
        assert!(
            error
                .to_string()
                .contains("give RFC 3339 (2027-03-01T12:00:00Z) or a plain date"),
            "{error}"
        );
    }
}

#[test]
fn a_date_in_the_past_or_now_is_refused() {
    assert_eq!(
        parse_expiry_date("2026-12-01", NOW),
        Err(ExpiryDateError::InThePast {
            given: "2026-12-01T00:00:00Z".to_owned()
        })
    );
    assert!(parse_expiry_date("2026-12-07T00:00:00Z", NOW).is_err());
    assert_eq!(
        parse_expiry_date("2026-12-01", NOW)
            .expect_err("past")
            .to_string(),
        "--registry-credential-expires 2026-12-01T00:00:00Z is in the past: the credential has already expired; get a new one and give its expiry date"
    );
}

#[test]
fn a_jwt_password_yields_its_exp_claim() {
    assert_eq!(
        jwt_expiry(&jwt(&format!(r#"{{"sub":"robot","exp":{MARCH_2027}}}"#))),
        Some(MARCH_2027)
    );
    // A fractional NumericDate is allowed by RFC 7519.
    assert_eq!(
        jwt_expiry(&jwt(&format!(r#"{{"exp":{MARCH_2027}.5}}"#))),
        Some(MARCH_2027)
    );
}

#[test]
fn anything_else_has_no_known_expiry() {
    for (why, password) in [
        ("an ordinary password", "s3cr3t-pass".to_owned()),
        ("two parts", "abc.def".to_owned()),
        ("four parts", format!("{}.x", jwt(r#"{"exp":1}"#))),
        ("payload not base64url", "aGVhZGVy.!!!.c2ln".to_owned()),
        ("payload not JSON", jwt("not json at all")),
        ("payload a JSON array", jwt("[1,2,3]")),
        ("no exp", jwt(r#"{"sub":"robot","iat":1}"#)),
        ("exp a string", jwt(r#"{"exp":"1803772800"}"#)),
        ("exp null", jwt(r#"{"exp":null}"#)),
        ("exp an object", jwt(r#"{"exp":{"at":1}}"#)),
    ] {
        assert_eq!(jwt_expiry(&password), None, "{why}");
    }
}

#[test]
fn the_flag_wins_over_the_jwt() {
    let token = jwt(&format!(r#"{{"exp":{}}}"#, MARCH_2027 + 5));
    assert_eq!(
        credential_expiry(Some(MARCH_2027), Some(&token)),
        Some(CredentialExpiry {
            at: MARCH_2027,
            source: ExpirySource::Flag
        })
    );
    assert_eq!(
        credential_expiry(None, Some(&token)),
        Some(CredentialExpiry {
            at: MARCH_2027 + 5,
            source: ExpirySource::Jwt
        })
    );
    assert_eq!(credential_expiry(None, Some("plain")), None);
    assert_eq!(credential_expiry(None, None), None);
}

#[test]
fn annotations_round_trip_and_hold_no_credential() {
    let token = jwt(&format!(r#"{{"exp":{MARCH_2027}}}"#));
    let expiry = credential_expiry(None, Some(&token)).expect("jwt");
    let annotations = expiry.annotations();
    assert_eq!(
        annotations,
        BTreeMap::from([
            (
                CREDENTIAL_EXPIRES_ANNOTATION.to_owned(),
                "2027-03-01T00:00:00Z".to_owned()
            ),
            (
                CREDENTIAL_EXPIRES_SOURCE_ANNOTATION.to_owned(),
                "jwt".to_owned()
            ),
        ])
    );
    assert!(annotations.values().all(|v| !token.contains(v.as_str())));
    assert_eq!(
        CredentialExpiry::from_annotations(Some(&annotations)),
        Some(expiry)
    );
    // Written by hand: no source counts as the user's; a bad date as nothing known.
    let by_hand = BTreeMap::from([(
        CREDENTIAL_EXPIRES_ANNOTATION.to_owned(),
        "2027-03-01T00:00:00Z".to_owned(),
    )]);
    assert_eq!(
        CredentialExpiry::from_annotations(Some(&by_hand)).map(|e| e.source),
        Some(ExpirySource::Flag)
    );
    let bad = BTreeMap::from([(CREDENTIAL_EXPIRES_ANNOTATION.to_owned(), "soon".to_owned())]);
    assert_eq!(CredentialExpiry::from_annotations(Some(&bad)), None);
    assert_eq!(CredentialExpiry::from_annotations(None), None);
}

#[test]
fn states_by_time_left() {
    assert_eq!(ExpiryState::at(None, NOW, WEEK), ExpiryState::Unknown);
    assert_eq!(
        ExpiryState::at(Some(NOW + WEEK + 1), NOW, WEEK),
        ExpiryState::Ok
    );
    assert_eq!(
        ExpiryState::at(Some(NOW + WEEK), NOW, WEEK),
        ExpiryState::Warning
    );
    assert_eq!(
        ExpiryState::at(Some(NOW + 1), NOW, WEEK),
        ExpiryState::Warning
    );
    assert_eq!(ExpiryState::at(Some(NOW), NOW, WEEK), ExpiryState::Expired);
    assert_eq!(
        ExpiryState::at(Some(NOW - 1), NOW, WEEK),
        ExpiryState::Expired
    );
}

#[test]
fn the_next_change_is_the_window_then_the_expiry() {
    let at = NOW + 10 * 86_400;
    assert_eq!(ExpiryState::next_change(at, NOW, WEEK), Some(3 * 86_400));
    assert_eq!(ExpiryState::next_change(at, at - WEEK, WEEK), Some(WEEK));
    assert_eq!(ExpiryState::next_change(at, at, WEEK), None);
}

#[test]
fn each_threshold_is_reported_once_per_expiry() {
    let mut tracker = ThresholdTracker::default();
    let at = NOW + 10 * 86_400;
    assert_eq!(tracker.observe(Some(at), NOW, WEEK), None);
    assert_eq!(
        tracker.observe(Some(at), at - WEEK, WEEK),
        Some(ExpiryState::Warning)
    );
    // Every resync after that says nothing new.
    assert_eq!(tracker.observe(Some(at), at - WEEK + 60, WEEK), None);
    assert_eq!(tracker.observe(Some(at), at - 1, WEEK), None);
    assert_eq!(
        tracker.observe(Some(at), at, WEEK),
        Some(ExpiryState::Expired)
    );
    assert_eq!(tracker.observe(Some(at), at + 3_600, WEEK), None);
    // Rotated to a credential that is again within the window: reported again.
    let rotated = at + 3 * 86_400;
    assert_eq!(
        tracker.observe(Some(rotated), at + 3_600, WEEK),
        Some(ExpiryState::Warning)
    );
    // Unknown, then known and already expired (a controller starting late): reported at once.
    assert_eq!(tracker.observe(None, at, WEEK), None);
    assert_eq!(
        tracker.observe(Some(at), at, WEEK),
        Some(ExpiryState::Expired)
    );
}

#[test]
fn short_durations() {
    assert_eq!(short_duration(83 * 86_400 + 4 * 3_600 + 59), "83d 4h");
    assert_eq!(short_duration(3 * 3_600 + 12 * 60 + 5), "3h 12m");
    assert_eq!(short_duration(200), "3m 20s");
    assert_eq!(short_duration(12), "12s");
}
