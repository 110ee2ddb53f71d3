//! Reading a review's body within bounds: a declared `Content-Length` over the limit is refused
//! before a byte of the body is read, a body that grows past the limit is refused as soon as it
//! does, the whole body must arrive within [`BODY_TIMEOUT`], and all bodies being received at
//! once share a memory budget ([`BodyBudget`]).
//!
//! The body is borrowed, not consumed: the caller keeps it alive until its answer has been
//! sent, so that over HTTP/2 a refusal is a complete response followed by `RST_STREAM
//! NO_ERROR`, not a reset the client reports as an error.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connections::{ConnectionState, ReceivingGuard};

/// The largest review accepted: Kubernetes' own request size limit. Larger bodies get 413.
pub const MAX_REVIEW_BYTES: usize = 3 * 1024 * 1024;
/// The whole body must have arrived this long after the headers (the API server sends it at
/// once; its own webhook timeout is at most 30 s).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of review bodies held at once, over all connections: a bound on what clients that
/// send most of a body and then stall can make the controller hold.
pub const BODY_BUDGET_BYTES: usize = 16 * 1024 * 1024;
/// The budget is counted in units of this many bytes.
const BUDGET_UNIT: usize = 1024;

/// A review body that was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// `Content-Length` declares more than the limit; nothing was read.
    #[error(
        "the declared body of {declared} bytes is larger than the {MAX_REVIEW_BYTES}-byte limit for an AdmissionReview"
    )]
    DeclaredTooLarge {
        /// The declared length.
        declared: u64,
    },
    /// The body grew past the limit while being read.
    #[error("the body is larger than the {MAX_REVIEW_BYTES}-byte limit for an AdmissionReview")]
    TooLarge,
    /// `Content-Length` is not a number.
    #[error("the Content-Length header is not a number of bytes")]
    BadLength,
    /// The body did not arrive in time (after this long).
    #[error("the body did not arrive within {} ms of the headers", .0.as_millis())]
    Timeout(Duration),
    /// Too many bytes of other reviews are being received right now.
    #[error("the webhook is receiving too many reviews at once; retry")]
    Busy,
    /// The connection failed while the body was read.
    #[error("the body could not be read: {0}")]
    Read(#[source] axum::Error),
    /// The body arrived so slowly that its connection was closed to make room for others.
    #[error("the body arrived too slowly while the webhook had no free connection; retry")]
    Evicted,
}

impl BodyError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::DeclaredTooLarge { .. } | Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadLength | Self::Read(_) => StatusCode::BAD_REQUEST,
            Self::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Busy | Self::Evicted => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `result` label of the admissions metric.
    pub fn metric(&self) -> &'static str {
        match self {
            Self::DeclaredTooLarge { .. } | Self::TooLarge => "too-large",
            Self::Timeout(_) => "timeout",
            Self::Busy => "busy",
            Self::Evicted => "evicted",
            Self::BadLength | Self::Read(_) => "bad-request",
        }
    }
}

/// The memory all bodies being received share.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.div_ceil(BUDGET_UNIT))))
    }

    fn take(&self, bytes: usize, held: &mut Option<OwnedSemaphorePermit>) -> bool {
        let units = u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        match self.0.clone().try_acquire_many_owned(units) {
            Ok(permit) => {
                match held {
                    Some(held) => held.merge(permit),
                    None => *held = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        Self::new(BODY_BUDGET_BYTES)
    }
}

/// The bounds of review bodies: the shared memory budget and the deadline.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// The memory all bodies being received share.
    pub budget: BodyBudget,
    /// How long after the headers the whole body must have arrived.
    pub timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            budget: BodyBudget::default(),
            timeout: BODY_TIMEOUT,
        }
    }
}

/// A body that was read, with its share of the budget (released on drop).
#[derive(Debug)]
pub struct ReadBody {
    /// The bytes.
    pub bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads `body` (whose request had `headers`) within `limits`. On a `connection` of the
/// server, the body counts as being received (how slowly it arrives ranks the connection when
/// room is needed) and the read ends when the connection is closed to make room.
pub async fn read_review_body(
    headers: &HeaderMap,
    body: &mut Body,
    limits: &BodyLimits,
    connection: Option<&Arc<ConnectionState>>,
) -> Result<ReadBody, BodyError> {
    let declared = declared_length(headers)?;
    if let Some(declared) = declared
        && declared > MAX_REVIEW_BYTES as u64
    {
        return Err(BodyError::DeclaredTooLarge { declared });
    }
    let receiving = connection.map(ConnectionState::receiving);
    let evicted = async {
        match &receiving {
            Some(receiving) => receiving.evicted().await,
            None => std::future::pending().await,
        }
    };
    let read = tokio::time::timeout(
        limits.timeout,
        collect(body, &limits.budget, receiving.as_ref()),
    );
    tokio::select! {
        read = read => match read {
            Ok(read) => read,
            Err(_) => Err(BodyError::Timeout(limits.timeout)),
        },
        () = evicted => Err(BodyError::Evicted),
    }
}

fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, BodyError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or(BodyError::BadLength)
}

async fn collect(
    body: &mut Body,
    budget: &BodyBudget,
    receiving: Option<&ReceivingGuard>,
) -> Result<ReadBody, BodyError> {
    let mut held = None;
    // The common case, the whole body in one frame, keeps that frame without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing we read
        };
        total = total.saturating_add(data.len());
        if let Some(receiving) = receiving {
            receiving.received(data.len());
        }
        if total > MAX_REVIEW_BYTES {
            return Err(BodyError::TooLarge);
        }
        if !budget.take(data.len(), &mut held) {
            return Err(BodyError::Busy);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                // Grown as bytes arrive, never from the declared length: a client that
                // declares 3 MiB and sends 2 bytes costs 2 bytes.
                if let Some(earlier) = earlier {
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    let bytes = first.unwrap_or_else(|| joined.freeze());
    Ok(ReadBody {
        bytes,
        _budget: held,
    })
}

#[cfg(test)]
mod tests;
