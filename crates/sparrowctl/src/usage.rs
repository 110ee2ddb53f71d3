//! Usage errors: wrong flags or flag values. They exit with code 2, everything else with 1.

/// A usage error; its message says what is wrong with the command line and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Wraps any displayable error as a usage error.
    pub fn from_display(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

/// Returns early with a usage error.
macro_rules! usage_bail {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::usage::UsageError(format!($($arg)*))))
    };
}
pub(crate) use usage_bail;
