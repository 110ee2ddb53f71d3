//! Copies owed to pods admitted while the namespace cache did not know their namespace (a
//! namespace created during a watch outage, an API server restart): parked here and made as
//! soon as the cache learns the namespace and says it is meshed, so no injected pod is left
//! without its pull secret. Bounded: at most [`MAX_PARKED`] namespaces, each for at most
//! [`PARK_LIMIT`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Namespaces parked at once; beyond that, a pod's copy waits for the next pod.
pub const MAX_PARKED: usize = 10_000;
/// How long a namespace the cache never learns stays parked (a namespace deleted at once).
pub const PARK_LIMIT: Duration = Duration::from_secs(600);
/// How often parked namespaces are looked up in the cache while any is parked.
pub const PARKED_POLL: Duration = Duration::from_millis(250);

/// One parked namespace: the pod whose admission parked it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The namespace that owes a copy.
    pub namespace: String,
    /// The pod (name or generateName) admitted without one.
    pub pod: String,
    /// When it was parked.
    pub since: Instant,
}

/// The parked namespaces, and a wake-up for whoever makes their copies.
#[derive(Debug, Default)]
pub struct ParkedCopies {
    parked: Mutex<BTreeMap<String, Parked>>,
    added: Notify,
}

impl ParkedCopies {
    /// Parks `namespace` for `pod`; false when [`MAX_PARKED`] namespaces are already parked.
    /// A namespace parked already keeps its first pod and time.
    pub fn park(&self, namespace: &str, pod: &str) -> bool {
        let mut parked = self.lock();
        if !parked.contains_key(namespace) {
            if parked.len() >= MAX_PARKED {
                return false;
            }
            parked.insert(
                namespace.to_owned(),
                Parked {
                    namespace: namespace.to_owned(),
                    pod: pod.to_owned(),
                    since: Instant::now(),
                },
            );
        }
        drop(parked);
        self.added.notify_one();
        true
    }

    /// Waits until something is parked, then [`PARKED_POLL`]; returns what is parked then.
    pub async fn next_round(&self) -> Vec<Parked> {
        loop {
            if self.is_empty() {
                self.added.notified().await;
            }
            tokio::time::sleep(PARKED_POLL).await;
            let parked: Vec<Parked> = self.lock().values().cloned().collect();
            if !parked.is_empty() {
                return parked;
            }
        }
    }

    /// Takes `namespace` off the list (its copy is made, or it is not owed one).
    pub fn release(&self, namespace: &str) {
        self.lock().remove(namespace);
    }

    /// How many namespaces are parked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Parked>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn parking_is_bounded_and_keeps_the_first_pod() {
        let parked = ParkedCopies::default();
        assert!(parked.park("shop", "web-1"));
        assert!(parked.park("shop", "web-2"));
        assert_eq!(parked.len(), 1);
        let round = parked.next_round().await;
        assert_eq!(round[0].pod, "web-1");
        for n in 1..MAX_PARKED {
            assert!(parked.park(&format!("ns-{n}"), "p"));
        }
        assert!(!parked.park("one-too-many", "p"), "bounded");
        parked.release("shop");
        assert!(parked.park("one-too-many", "p"), "room again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_waits_for_something_parked() {
        let parked = std::sync::Arc::new(ParkedCopies::default());
        let waiter = tokio::spawn({
            let parked = parked.clone();
            async move { parked.next_round().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished(), "nothing parked: no round");
        parked.park("shop", "web-1");
        let round = waiter.await.expect("round");
        assert_eq!(round.len(), 1);
        assert_eq!(round[0].namespace, "shop");
    }
}
