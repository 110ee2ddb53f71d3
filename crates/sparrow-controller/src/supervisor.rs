//! Owns every long-lived task of the process (as kubert's runtime does): each runs in its own
//! span, and the first one to end, normally or by panic, is reported with its name and why,
//! so the process can stop and exit non-zero instead of serving on with a dead watch.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;
use tracing::Instrument as _;

/// How a supervised task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskEnded {
    /// The task's name.
    pub name: &'static str,
    /// Why: "returned", or the panic's message.
    pub reason: String,
}

impl std::fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} task ended ({})", self.name, self.reason)
    }
}

impl std::error::Error for TaskEnded {}

/// The set of long-lived tasks.
#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<&'static str>,
    names: Vec<(tokio::task::Id, &'static str)>,
    failed: Arc<AtomicBool>,
}

impl Supervisor {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` under the span `task{name=...}` until it ends or the supervisor is dropped.
    /// Such a task is meant to run for the life of the process.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let span = tracing::info_span!("task", name);
        let handle = self.tasks.spawn(
            async move {
                task.await;
                name
            }
            .instrument(span),
        );
        self.names.push((handle.id(), name));
    }

    /// A readiness check: true while every task runs.
    pub fn all_running(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let failed = self.failed.clone();
        move || !failed.load(Ordering::Acquire)
    }

    /// Waits for the first task to end and says which and why; pending forever without tasks.
    pub async fn first_ended(&mut self) -> TaskEnded {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        self.failed.store(true, Ordering::Release);
        match joined {
            Ok((_, name)) => TaskEnded {
                name,
                reason: "returned".to_owned(),
            },
            Err(error) => TaskEnded {
                name: self.name_of(error.id()),
                reason: panic_message(error),
            },
        }
    }

    fn name_of(&self, id: tokio::task::Id) -> &'static str {
        self.names
            .iter()
            .find(|(task, _)| *task == id)
            .map_or("unnamed", |(_, name)| *name)
    }

    /// Waits for the task `name` to end (tasks ending meanwhile are let go: the process is
    /// stopping).
    pub async fn wait_for(&mut self, name: &'static str) {
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(error) => error.id(),
            };
            if self.name_of(id) == name {
                return;
            }
        }
    }

    /// Stops every task still running.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if error.is_cancelled() {
        return "cancelled".to_owned();
    }
    let payload = error.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_task_to_end_is_named_and_readiness_drops() {
        let mut tasks = Supervisor::new();
        let ready = tasks.all_running();
        tasks.spawn("forever", std::future::pending());
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("watch", async move {
            let _ = finished.await;
        });
        assert!(ready());
        finish.send(()).expect("task waits");
        let ended = tasks.first_ended().await;
        assert_eq!(
            ended,
            TaskEnded {
                name: "watch",
                reason: "returned".to_owned()
            }
        );
        assert_eq!(ended.to_string(), "the watch task ended (returned)");
        assert!(!ready(), "a dead task makes the process unready");
        tasks.shutdown().await;
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_with_its_message() {
        let mut tasks = Supervisor::new();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("election", async {
            let lease: Option<u32> = None;
            if lease.is_none() {
                panic!("the Lease vanished");
            }
        });
        let ended = tasks.first_ended().await;
        assert_eq!(ended.name, "election");
        assert_eq!(ended.reason, "panicked: the Lease vanished");
    }
}
