//! The connection table: at most [`MAX_CONNECTIONS`] open at once, and what each is doing.
//!
//! A full table does not stop the server: the oldest connection that is not working on a
//! received review (a slow client still sending, or an idle keep-alive) is closed to make room,
//! so a flood of slow connections cannot starve the kubelet's `/healthz` probe or the API
//! server. Only when every connection is busy with a review is a new one refused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The most connections open at once: each costs about 40 KiB of TLS and HTTP state while it
/// sends slowly (measured: 512 of them took the controller from 11 to 31 MiB, over its 30 MB
/// budget), and the API server needs a handful, HTTP/2 multiplexed.
pub const MAX_CONNECTIONS: usize = 256;

/// What one open connection is doing, shared by its task, its requests and the table.
#[derive(Debug)]
pub struct ConnectionState {
    /// Requests whose body has arrived and whose answer is being worked on: never evicted.
    busy: AtomicUsize,
    /// Requests started (headers received) and not answered yet.
    in_flight: AtomicUsize,
    /// When a request last started or ended, in ms since `epoch`.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    /// Told when the table closes this connection to make room.
    evicted: Notify,
}

impl ConnectionState {
    fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            evicted: Notify::new(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity_ms.store(ms, Ordering::Relaxed);
    }

    /// Marks the connection busy (its review has arrived) until the guard drops.
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.clone())
    }

    /// Counts a request as started until the guard drops.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        RequestGuard(self.clone())
    }

    /// How long the connection has had no request in flight; zero while one is.
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Resolves when the table closes this connection to make room for a new one.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }
}

/// Holds a connection busy; see [`ConnectionState::busy`].
#[derive(Debug)]
pub struct BusyGuard(Arc<ConnectionState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds a request in flight; see [`ConnectionState::request`].
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnectionState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a new connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

/// The open connections, oldest first.
#[derive(Debug)]
pub struct ConnectionTable {
    max: usize,
    inner: Mutex<Slots>,
    emptied: Notify,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnectionState>>,
}

impl ConnectionTable {
    /// A table of at most `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            inner: Mutex::new(Slots::default()),
            emptied: Notify::new(),
        })
    }

    /// A slot for a new connection; when the table is full, the oldest connection that is not
    /// busy is told to close and its slot is reused.
    pub fn admit(self: &Arc<Self>) -> Result<ConnectionSlot, TableFull> {
        let mut slots = self.lock();
        if slots.open.len() >= self.max {
            let victim = slots
                .open
                .iter()
                .find(|(_, state)| !state.is_busy())
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                return Err(TableFull);
            };
            if let Some(state) = slots.open.remove(&victim) {
                state.evicted.notify_one();
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let state = Arc::new(ConnectionState::new());
        slots.open.insert(id, state.clone());
        Ok(ConnectionSlot {
            id,
            state,
            table: self.clone(),
        })
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// No connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once no connection is open.
    pub async fn wait_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.is_empty() {
                return;
            }
            emptied.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The table holds no invariant a panicking holder could break half-way.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionSlot {
    id: u64,
    state: Arc<ConnectionState>,
    table: Arc<ConnectionTable>,
}

impl ConnectionSlot {
    /// What the connection is doing.
    pub fn state(&self) -> &Arc<ConnectionState> {
        &self.state
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut slots = self.table.lock();
        slots.open.remove(&self.id);
        if slots.open.is_empty() {
            self.table.emptied.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_evicts_the_oldest_connection_that_is_not_busy() {
        let table = ConnectionTable::new(3);
        let first = table.admit().expect("slot");
        let second = table.admit().expect("slot");
        let third = table.admit().expect("slot");
        let _working = first.state().busy();
        assert_eq!(table.len(), 3);

        let fourth = table.admit().expect("room is made");
        assert_eq!(table.len(), 3);
        // The second was the oldest idle one: it is told, the busy first one is not.
        let told = futures::FutureExt::now_or_never(second.state().evicted());
        assert!(told.is_some(), "the oldest idle connection is evicted");
        assert!(futures::FutureExt::now_or_never(first.state().evicted()).is_none());
        drop(second);
        assert_eq!(table.len(), 3, "an evicted slot is not freed twice");

        let _a = third.state().busy();
        let _b = fourth.state().busy();
        assert_eq!(table.admit().map(|_| ()), Err(TableFull));
    }

    #[test]
    fn slots_are_freed_on_drop_and_idle_time_counts_only_without_requests() {
        let table = ConnectionTable::new(2);
        let slot = table.admit().expect("slot");
        let request = slot.state().request();
        assert_eq!(slot.state().idle_for(), Duration::ZERO);
        drop(request);
        assert!(slot.state().idle_for() < Duration::from_secs(60));
        drop(slot);
        assert!(table.is_empty());
        assert!(futures::FutureExt::now_or_never(table.wait_empty()).is_some());
    }
}
