//! What `/readyz` waits for: named checks, one per cache and one for the long-lived tasks,
//! and whether the replica is shutting down (then it is never ready again).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// A set of named readiness checks; ready when all pass.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    stopping: Arc<AtomicBool>,
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

    /// Marks this replica (every clone of this set) as shutting down: not ready from now on,
    /// so the Service stops sending it new connections.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Whether [`Readiness::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
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
        f.debug_struct("Readiness")
            .field("checks", &names)
            .field("stopping", &self.is_stopping())
            .finish()
    }
}
