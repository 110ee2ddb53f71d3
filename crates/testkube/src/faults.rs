//! Fault injection: fail the next N matching requests, add latency.

use std::sync::Mutex;
use std::time::Duration;

use crate::error::ApiError;

#[derive(Debug)]
struct FailRule {
    verb: String,
    resource: String,
    remaining: usize,
    code: u16,
}

/// Injected faults, consulted on every resource request.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FailRule>>,
    latency: Mutex<Duration>,
}

fn reason_for(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => ("BadRequest", "injected bad request"),
        403 => ("Forbidden", "injected: forbidden"),
        404 => (
            "NotFound",
            "injected: the server could not find the requested resource",
        ),
        409 => (
            "Conflict",
            "injected: the object has been modified; please apply your changes to the latest version and try again",
        ),
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "injected: the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "injected: the server was unable to return a response in the time allotted",
        ),
        _ => ("InternalError", "Internal error occurred: injected fault"),
    }
}

impl Faults {
    /// Fails the next `times` requests matching `verb` and `resource` (`"*"` matches any) with `code`.
    pub fn fail_next(&self, verb: &str, resource: &str, times: usize, code: u16) {
        self.rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FailRule {
                verb: verb.to_string(),
                resource: resource.to_string(),
                remaining: times,
                code,
            });
    }

    /// Consumes one matching rule, returning the error to answer with.
    pub fn take(&self, verb: &str, resource: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let rule = rules.iter_mut().find(|r| {
            r.remaining > 0
                && (r.verb == "*" || r.verb == verb)
                && (r.resource == "*" || r.resource == resource)
        })?;
        rule.remaining -= 1;
        let code = rule.code;
        rules.retain(|r| r.remaining > 0);
        let (reason, message) = reason_for(code);
        let mut err = ApiError::new(code, reason, message);
        if code == 429 {
            err.details = Some(serde_json::json!({"retryAfterSeconds": 1}));
        }
        Some(err)
    }

    /// Sets the delay added before every resource request is handled.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// The current added delay.
    pub fn latency(&self) -> Duration {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes every pending failure and the added latency.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.set_latency(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_exactly_n_matching_requests() {
        let f = Faults::default();
        f.fail_next("create", "secrets", 2, 429);
        assert!(f.take("get", "secrets").is_none());
        assert!(f.take("create", "pods").is_none());
        let e = f.take("create", "secrets").expect("first");
        assert_eq!((e.code, e.reason.as_str()), (429, "TooManyRequests"));
        assert!(f.take("create", "secrets").is_some());
        assert!(f.take("create", "secrets").is_none());
        f.fail_next("*", "*", 1, 500);
        assert_eq!(f.take("list", "pods").map(|e| e.code), Some(500));
        f.set_latency(Duration::from_millis(5));
        f.clear();
        assert_eq!(f.latency(), Duration::ZERO);
    }
}
