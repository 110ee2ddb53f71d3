//! A response body that keeps the request's body alive until the response has been sent.
//!
//! When a server answers before reading the whole request (413, 408), the moment it lets go
//! of the request body decides what an HTTP/2 client sees: dropped before the response, the
//! stream is reset with CANCEL and clients report an error instead of the answer. Dropped
//! after the response is complete, the reset is `NO_ERROR`, which RFC 9113 §8.1 defines for
//! exactly this case; yet some clients still uploading (curl 7.88) report even that as a
//! stream error. So over HTTP/2 the rest of the request body is first read and discarded for
//! a short while ([`DRAIN_BYTES`], [`DRAIN_TIME`]): a client that finishes its upload in that
//! time sees a plain end of stream and the answer; one that does not gets `NO_ERROR`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

/// The most of a refused HTTP/2 request body read and discarded after the answer.
pub const DRAIN_BYTES: usize = 8 * 1024 * 1024;
/// The longest a refused HTTP/2 request body is read and discarded after the answer.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// `text`, then the end of the body; `request` is let go of with this body.
pub struct HeldBody {
    text: Option<Bytes>,
    request: Option<Body>,
    drain: bool,
}

impl HeldBody {
    /// A body of `text` that holds `request` until it is dropped; with `drain` (HTTP/2), the
    /// rest of `request` is then read and discarded, within bounds.
    pub fn new(text: Bytes, request: Body, drain: bool) -> Self {
        Self {
            text: Some(text),
            request: Some(request),
            drain,
        }
    }
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.text.take().map(|text| Ok(Frame::data(text))))
    }

    fn is_end_stream(&self) -> bool {
        // Never claimed early: the end of the response is sent as its own step, so the
        // request body (let go of with this one) goes only after it.
        false
    }

    fn size_hint(&self) -> SizeHint {
        let len = self.text.as_ref().map_or(0, |t| t.len() as u64);
        SizeHint::with_exact(len)
    }
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        let Some(request) = self.request.take() else {
            return;
        };
        if !self.drain || request.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(DRAIN_TIME, discard(request)).await;
            });
        }
    }
}

/// Reads and drops up to [`DRAIN_BYTES`] of `body` (reading is what lets the client send on).
async fn discard(mut body: Body) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(data.len());
            if seen > DRAIN_BYTES {
                return;
            }
        }
    }
}
