//! The connection table: at most [`MAX_CONNECTIONS`] open at once, at most
//! [`MAX_CONNECTIONS_PER_PEER`] from one IP address, and what each is doing.
//!
//! A full table does not stop the server: a connection is closed to make room, chosen by what
//! it costs against what it gives, most wasteful first:
//! 1. **unused**: its TLS handshake stalled (3 x [`FRESH`]), or done with it for more than
//!    [`FRESH`] and never sent a request (an idle flood): oldest first; dropped at once (there
//!    is no request to lose);
//! 2. **slow body**: a review whose body is still arriving after [`FRESH`]: slowest (bytes
//!    per second) first; its request is answered 503 and the connection closed after the
//!    answer;
//! 3. **idle**: kept alive after serving requests: the most recently active first (a client
//!    posting back to back over HTTP/1.1 costs the most; the API server's long-lived HTTP/2
//!    connection, used now and then, the least); closed gracefully (HTTP/2 GOAWAY, which a
//!    client retries on a new connection; HTTP/1 close when idle);
//! 4. **fresh**: in its TLS handshake, or done with it less than [`FRESH`] ago and not used
//!    yet (the API server's new connection, between its handshake and its first request), or
//!    a body that started arriving less than [`FRESH`] ago: oldest first;
//!
//! and never a connection working on a request (its review received, or a request being
//! answered). Within a class, connections of the peer holding the most go first. A peer at its
//! own cap makes room among its own unused and slow-body connections only: one source can
//! neither take the table nor, when a flood shares the API server's address (from the node),
//! push out the API server's kept-alive connection or churn handshakes. Only when nothing can
//! be closed is a new connection refused (before its handshake: a refusal costs no CPU).
//!
//! What no library does: hyper and tower bound concurrency by refusing or queueing; none
//! chooses a victim by what a connection is doing, nor answers its request before closing it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The most connections open at once: each costs about 40 KiB of TLS and HTTP state while it
/// sends slowly (measured: 512 of them took the controller from 11 to 31 MiB, over its 30 MB
/// budget), and the API server needs a handful, HTTP/2 multiplexed.
pub const MAX_CONNECTIONS: usize = 256;
/// The most connections open at once from one IP address: half the table.
pub const MAX_CONNECTIONS_PER_PEER: usize = MAX_CONNECTIONS / 2;
/// A connection younger than this that has not sent a request yet is about to (a client
/// sends its request right after the handshake), and a body arriving for less than this may
/// simply not have been read yet: both are closed to make room last.
pub const FRESH: Duration = Duration::from_secs(1);
/// A TLS handshake still going after this many times [`FRESH`] is stalled.
const STALLED_HANDSHAKE_FACTOR: u32 = 3;

/// What one open connection is doing, shared by its task, its requests and the table.
#[derive(Debug)]
pub struct ConnectionState {
    peer: IpAddr,
    /// The TLS handshake is done (always true for plain HTTP).
    handshaken: AtomicBool,
    /// When it was done, in ms since `epoch`.
    handshaken_ms: AtomicU64,
    /// Requests whose body has arrived and whose answer is being worked on.
    busy: AtomicUsize,
    /// Requests started (headers received) and not answered yet.
    in_flight: AtomicUsize,
    /// Requests whose body is being received.
    receiving: AtomicUsize,
    /// Bytes of bodies received by the requests in `receiving`.
    body_bytes: AtomicU64,
    /// When the oldest body now being received started, in ms since `epoch`.
    body_started_ms: AtomicU64,
    /// Requests answered.
    served: AtomicU64,
    /// When a request last started or ended, in ms since `epoch`.
    last_activity_ms: AtomicU64,
    epoch: Instant,
    evicted: AtomicBool,
    evicted_notify: Notify,
}

/// How a connection stands when room is needed, most wasteful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Handshaking, or never sent a request.
    Unused,
    /// A body arriving slowly.
    SlowBody,
    /// Kept alive after serving requests.
    Idle,
    /// Opened moments ago, its first request still to come.
    Fresh,
    /// Working on a request: never closed to make room.
    Working,
}

impl ConnectionState {
    fn new(peer: IpAddr, handshaken: bool) -> Self {
        Self {
            peer,
            handshaken: AtomicBool::new(handshaken),
            handshaken_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
            body_bytes: AtomicU64::new(0),
            body_started_ms: AtomicU64::new(0),
            served: AtomicU64::new(0),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            evicted: AtomicBool::new(false),
            evicted_notify: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_activity_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// The TLS handshake is done.
    pub fn handshaken(&self) {
        self.handshaken_ms.store(self.now_ms(), Ordering::Relaxed);
        self.handshaken.store(true, Ordering::Release);
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

    /// Counts a body as being received until the guard drops; feed it what arrives.
    pub fn receiving(self: &Arc<Self>) -> ReceivingGuard {
        if self.receiving.fetch_add(1, Ordering::AcqRel) == 0 {
            self.body_bytes.store(0, Ordering::Relaxed);
            self.body_started_ms.store(self.now_ms(), Ordering::Relaxed);
        }
        ReceivingGuard(self.clone())
    }

    /// How long the connection has had no request in flight; zero while one is.
    pub fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Whether the connection has served a request (or has one in flight).
    pub fn was_used(&self) -> bool {
        self.served.load(Ordering::Acquire) > 0 || self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Resolves when the table has closed this connection to make room (at once if it has).
    pub async fn evicted(&self) {
        let mut notified = pin!(self.evicted_notify.notified());
        notified.as_mut().enable();
        if self.is_evicted() {
            return;
        }
        notified.await;
    }

    /// Whether the table closed this connection to make room.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.evicted_notify.notify_waiters();
    }

    /// How the connection stands now (unused connections younger than `fresh` are
    /// [`Standing::Fresh`]), and the number that orders it within its class (lower goes first).
    pub fn standing(&self, fresh: Duration) -> (Standing, u64) {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let receiving = self.receiving.load(Ordering::Acquire);
        let working = self.busy.load(Ordering::Acquire) > 0 || in_flight > receiving;
        if working {
            return (Standing::Working, 0);
        }
        if receiving > 0 {
            let started = Duration::from_millis(self.body_started_ms.load(Ordering::Relaxed));
            let elapsed = self.epoch.elapsed().saturating_sub(started);
            if elapsed < fresh {
                // Too soon to call it slow: the API server's body may not be read yet.
                return (Standing::Fresh, 0);
            }
            let bytes = self.body_bytes.load(Ordering::Relaxed);
            let rate = u128::from(bytes) * 1000 / elapsed.as_millis().max(1000);
            return (Standing::SlowBody, u64::try_from(rate).unwrap_or(u64::MAX));
        }
        if !self.handshaken.load(Ordering::Acquire) {
            // A handshake is slow under load (the API server's too); one stalled for long is
            // a slow client. Oldest first: the table's ids order by age.
            if self.epoch.elapsed() < fresh * STALLED_HANDSHAKE_FACTOR {
                return (Standing::Fresh, 0);
            }
            return (Standing::Unused, 0);
        }
        if self.served.load(Ordering::Acquire) == 0 {
            let done = Duration::from_millis(self.handshaken_ms.load(Ordering::Relaxed));
            if self.epoch.elapsed().saturating_sub(done) < fresh {
                return (Standing::Fresh, 0);
            }
            return (Standing::Unused, 0);
        }
        // The most recently active first: a client sending requests back to back, one at a
        // time, costs the most per request; a connection used now and then (the API server's,
        // between pod creations) costs the least and goes last.
        let idle_ms = u64::try_from(self.idle_for().as_millis()).unwrap_or(u64::MAX);
        (Standing::Idle, idle_ms)
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
        self.0.served.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds a body as being received; see [`ConnectionState::receiving`].
#[derive(Debug)]
pub struct ReceivingGuard(Arc<ConnectionState>);

impl ReceivingGuard {
    /// `bytes` more of the body arrived.
    pub fn received(&self, bytes: usize) {
        self.0
            .body_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Resolves when the connection is closed to make room: the body will not be waited for.
    pub async fn evicted(&self) {
        self.0.evicted().await;
    }
}

impl Drop for ReceivingGuard {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a new connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every connection is working on a request.
    TableFull,
    /// Every connection of this peer, at its cap, is working on a request.
    PeerFull,
}

/// The bounds of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    /// Connections open at once.
    pub max: usize,
    /// Connections open at once from one IP address.
    pub per_peer: usize,
    /// How long an unused connection counts as fresh ([`FRESH`]).
    pub fresh: Duration,
}

/// The open connections, oldest first.
#[derive(Debug)]
pub struct ConnectionTable {
    limits: TableLimits,
    inner: Mutex<Slots>,
    emptied: Notify,
}

#[derive(Debug, Default)]
struct Slots {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnectionState>>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Slots {
    fn remove(&mut self, id: u64) -> Option<Arc<ConnectionState>> {
        let state = self.open.remove(&id)?;
        if let Some(count) = self.per_peer.get_mut(&state.peer) {
            *count -= 1;
            if *count == 0 {
                self.per_peer.remove(&state.peer);
            }
        }
        Some(state)
    }

    /// The connection to close to make room, among those of `only` (a peer) or all.
    fn victim(&self, only: Option<IpAddr>, fresh: Duration) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, state)| only.is_none_or(|peer| state.peer == peer))
            .filter_map(|(id, state)| {
                let (standing, order) = state.standing(fresh);
                let share = self.per_peer.get(&state.peer).copied().unwrap_or(0);
                // A peer at its cap only replaces what gives nothing: its working, idle and
                // fresh connections stay (the API server's among them, when a flood comes
                // from its address), and the newcomer is refused before any handshake.
                let allowed = if only.is_some() {
                    standing < Standing::Idle
                } else {
                    standing != Standing::Working
                };
                allowed.then_some(((standing, std::cmp::Reverse(share), order, *id), *id))
            })
            .min()
            .map(|(_, id)| id)
    }
}

impl ConnectionTable {
    /// A table of at most `limits.max` connections, `limits.per_peer` from one address.
    pub fn new(limits: TableLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            inner: Mutex::new(Slots::default()),
            emptied: Notify::new(),
        })
    }

    /// A slot for a new connection from `peer` (`handshaken`: no TLS handshake to come). At
    /// its peer's cap, or with the table full, a connection is closed to make room (see the
    /// module's order); refused when none can be.
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        handshaken: bool,
    ) -> Result<ConnectionSlot, Refused> {
        let mut slots = self.lock();
        let mine = slots.per_peer.get(&peer).copied().unwrap_or(0);
        let at_peer_cap = mine >= self.limits.per_peer;
        if at_peer_cap || slots.open.len() >= self.limits.max {
            // At its cap a peer makes room among its own connections only.
            let (only, refusal) = if at_peer_cap {
                (Some(peer), Refused::PeerFull)
            } else {
                (None, Refused::TableFull)
            };
            let victim = slots.victim(only, self.limits.fresh).ok_or(refusal)?;
            if let Some(state) = slots.remove(victim) {
                state.evict();
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let state = Arc::new(ConnectionState::new(peer, handshaken));
        slots.open.insert(id, state.clone());
        *slots.per_peer.entry(peer).or_default() += 1;
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
        slots.remove(self.id);
        if slots.open.is_empty() {
            self.table.emptied.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
