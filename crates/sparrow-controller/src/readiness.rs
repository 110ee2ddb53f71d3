//! What `/readyz` waits for: named checks, one per cache (namespaces now; the pull-secret
//! copies' cache joins them in the next issue).

use std::sync::Arc;

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// A set of named readiness checks; ready when all pass.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    /// No checks: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check named `name`.
    #[must_use]
    pub fn with(
        mut self,
        name: &'static str,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name, Arc::new(check)));
        self
    }

    /// The names of the checks that do not pass yet.
    pub fn pending(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|(_, check)| !check())
            .map(|(name, _)| *name)
            .collect()
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}
