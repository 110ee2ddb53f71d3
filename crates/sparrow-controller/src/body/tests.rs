use futures::StreamExt;
use http::HeaderValue;

use super::*;

fn headers(length: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(length) = length {
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_str(length).expect("value"),
        );
    }
    headers
}

fn chunks(parts: Vec<Vec<u8>>) -> Body {
    Body::from_stream(futures::stream::iter(
        parts
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
    ))
}

async fn read(
    length: Option<&str>,
    mut body: Body,
    limits: &BodyLimits,
) -> Result<Bytes, BodyError> {
    read_review_body(&headers(length), &mut body, limits, None)
        .await
        .map(|r| r.bytes)
}

#[tokio::test]
async fn bodies_within_the_limit_are_read_whole() {
    let limits = BodyLimits::default();
    let one = read(Some("5"), chunks(vec![b"hello".to_vec()]), &limits).await;
    assert_eq!(one.expect("read"), "hello");
    let many = read(
        None,
        chunks(vec![b"he".to_vec(), b"l".to_vec(), b"lo".to_vec()]),
        &limits,
    )
    .await;
    assert_eq!(many.expect("read"), "hello");
    let exact = read(None, chunks(vec![vec![b' '; MAX_REVIEW_BYTES]]), &limits).await;
    assert_eq!(exact.expect("read").len(), MAX_REVIEW_BYTES);
}

#[tokio::test]
async fn oversized_declared_growing_and_garbled_lengths_are_refused() {
    let limits = BodyLimits::default();
    // The declared length is refused before the body is polled: this body would panic.
    let never = Body::from_stream(futures::stream::once(async {
        panic!("the body was read");
        #[allow(unreachable_code)]
        Ok::<Bytes, std::io::Error>(Bytes::new())
    }));
    let declared = read(Some("104857600"), never, &limits).await;
    assert!(matches!(
        declared,
        Err(BodyError::DeclaredTooLarge {
            declared: 104_857_600
        })
    ));
    let grown = read(
        None,
        chunks(vec![vec![b' '; MAX_REVIEW_BYTES], vec![b' ']]),
        &limits,
    )
    .await;
    let error = grown.expect_err("grew past the limit");
    assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error.to_string(),
        "the body is larger than the 3145728-byte limit for an AdmissionReview"
    );
    for bad in ["-1", "ten", "1e3", ""] {
        let garbled = read(Some(bad), chunks(vec![]), &limits).await;
        assert!(matches!(garbled, Err(BodyError::BadLength)), "{bad:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_times_out() {
    let limits = BodyLimits {
        timeout: Duration::from_secs(10),
        ..BodyLimits::default()
    };
    let stalled = Body::from_stream(
        futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))])
            .chain(futures::stream::pending()),
    );
    let error = read(Some("100"), stalled, &limits)
        .await
        .expect_err("stalled");
    assert_eq!(error.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        error.to_string(),
        "the body did not arrive within 10000 ms of the headers"
    );
}

#[tokio::test]
async fn bodies_held_at_once_share_the_budget() {
    let limits = BodyLimits {
        budget: BodyBudget::new(8 * 1024),
        ..BodyLimits::default()
    };
    let mut first = chunks(vec![vec![b' '; 6 * 1024]]);
    let held = read_review_body(&headers(None), &mut first, &limits, None)
        .await
        .expect("within budget");
    let second = read(None, chunks(vec![vec![b' '; 4 * 1024]]), &limits).await;
    assert_eq!(
        second.expect_err("over budget").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    drop(held);
    let third = read(None, chunks(vec![vec![b' '; 4 * 1024]]), &limits).await;
    assert!(
        third.is_ok(),
        "the budget is returned when a body is dropped"
    );
}
