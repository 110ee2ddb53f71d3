//! AdmissionReview v1 on the wire, as the API server sends and expects it. The request's
//! object stays raw JSON until we know it is a Pod, so each review is parsed once.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `apiVersion` of the only AdmissionReview version the webhook is registered for.
pub(crate) const API_VERSION: &str = "admission.k8s.io/v1";
/// `kind` of a review.
pub(crate) const KIND: &str = "AdmissionReview";

/// An incoming review.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IncomingReview<'a> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(borrow, default)]
    pub request: Option<AdmissionRequest<'a>>,
}

/// `group`, `version`, `kind` of the object under review.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

/// The fields of a request the webhook uses; the others are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionRequest<'a> {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub kind: Option<GroupVersionKind>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(borrow, default)]
    pub object: Option<&'a RawValue>,
}

/// The review we answer with.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OutgoingReview {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

/// `response` of a review.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSON Patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Why a request is refused (a `metav1.Status`).
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub code: u16,
    pub message: String,
    pub reason: &'static str,
}

impl AdmissionResponse {
    pub(crate) fn allow(uid: String) -> Self {
        Self {
            uid,
            allowed: true,
            status: None,
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn deny(uid: String, message: String) -> Self {
        Self {
            uid,
            allowed: false,
            status: Some(Status {
                code: 400,
                message,
                reason: "BadRequest",
            }),
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn into_review(self) -> OutgoingReview {
        OutgoingReview {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        }
    }
}
