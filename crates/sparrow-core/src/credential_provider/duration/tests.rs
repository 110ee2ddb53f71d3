use std::time::Duration;

use super::*;

const MINUTE: u64 = 60;
const HOUR: u64 = 3_600;

#[test]
fn go_durations_parse_as_go_parses_them() {
    for (text, expected) in [
        ("12h", Duration::from_secs(12 * HOUR)),
        ("30m", Duration::from_secs(30 * MINUTE)),
        ("1h30m", Duration::from_secs(HOUR + 30 * MINUTE)),
        ("12h0m0s", Duration::from_secs(12 * HOUR)),
        ("10s", Duration::from_secs(10)),
        ("500ms", Duration::from_millis(500)),
        ("1.5h", Duration::from_secs(HOUR + 30 * MINUTE)),
        (".5s", Duration::from_millis(500)),
        ("1.s", Duration::from_secs(1)),
        ("0s", Duration::ZERO),
        ("0", Duration::ZERO),
        ("-0", Duration::ZERO),
        ("+5m", Duration::from_secs(5 * MINUTE)),
        ("1us", Duration::from_micros(1)),
        ("1\u{b5}s", Duration::from_micros(1)),
        ("1\u{3bc}s", Duration::from_micros(1)),
        ("7ns", Duration::from_nanos(7)),
        ("2562047h", Duration::from_secs(2_562_047 * HOUR)),
        ("1m1m", Duration::from_secs(2 * MINUTE)),
    ] {
        assert_eq!(parse_go_duration(text), Ok(expected), "{text}");
    }
}

#[test]
fn what_go_refuses_is_refused_with_the_form_to_use() {
    // humantime would take "2d", "1 hour" and "1M"; the kubelet would not.
    for text in [
        "", "12", "h", "2d", "1 hour", "1h 30m", "1M", "1y", "1.5", ".", "-", "+", "1hh", "abc",
        "1e3s",
    ] {
        let error = parse_go_duration(text).expect_err(text);
        assert_eq!(error, GoDurationError::Invalid(text.to_owned()));
    }
    assert_eq!(
        GoDurationError::Invalid("2d".to_owned()).to_string(),
        "\"2d\" is not a duration: write it as Go does, a number and a unit (h, m, s, ms, us, ns) repeated, such as 12h, 30m, 1h30m or 10s"
    );
}

#[test]
fn negative_and_too_long_durations_are_refused() {
    assert_eq!(
        parse_go_duration("-1h").map_err(|e| e.to_string()),
        Err("\"-1h\" is negative: a cache duration is 0s or more".to_owned())
    );
    assert_eq!(
        parse_go_duration("2562048h").map_err(|e| e.to_string()),
        Err("\"2562048h\" is too long: Go durations hold at most 2562047h".to_owned())
    );
    assert!(matches!(
        parse_go_duration("99999999999999999999999999999999999999999h"),
        Err(GoDurationError::TooLong(_))
    ));
}

#[test]
fn durations_format_as_go_formats_them() {
    for (duration, expected) in [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(12 * HOUR), "12h0m0s"),
        (Duration::from_secs(HOUR + 30 * MINUTE), "1h30m0s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(10), "10s"),
        (Duration::from_millis(1_500), "1.5s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_micros(1_500), "1.5ms"),
        (Duration::from_nanos(1_500), "1.5\u{b5}s"),
        (Duration::from_nanos(7), "7ns"),
        (Duration::from_secs(HOUR + 1), "1h0m1s"),
    ] {
        assert_eq!(format_go_duration(duration), expected);
        assert_eq!(parse_go_duration(expected), Ok(duration), "{expected}");
    }
}

proptest::proptest! {
    #[test]
    fn formatting_then_parsing_gives_the_duration_back(nanos in 0u64..=i64::MAX as u64) {
        let duration = Duration::from_nanos(nanos);
        proptest::prop_assert_eq!(parse_go_duration(&format_go_duration(duration)), Ok(duration));
    }
}
