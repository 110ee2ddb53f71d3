use std::net::Ipv4Addr;

use futures::FutureExt as _;

use super::*;

const FLOOD: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
const APISERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// A table where no connection counts as fresh (the ordering tests need no clock).
fn table(max: usize, per_peer: usize) -> Arc<ConnectionTable> {
    ConnectionTable::new(TableLimits {
        max,
        per_peer,
        fresh: Duration::ZERO,
    })
}

fn told(slot: &ConnectionSlot) -> bool {
    slot.state().is_evicted() && slot.state().evicted().now_or_never().is_some()
}

/// A connection that served one request and is now idle between requests.
fn served(slot: &ConnectionSlot) {
    slot.state().handshaken();
    drop(slot.state().request());
}

#[test]
fn a_connection_working_on_a_request_is_never_closed_to_make_room() {
    let table = table(2, 2);
    let first = table.admit(APISERVER, false).expect("slot");
    let second = table.admit(APISERVER, false).expect("slot");
    for slot in [&first, &second] {
        slot.state().handshaken();
    }
    // One review received and being answered; one request being answered (a probe, say).
    let _busy = first.state().busy();
    let _request = first.state().request();
    let _answering = second.state().request();
    assert_eq!(
        table.admit(FLOOD, false).map(|_| ()),
        Err(Refused::TableFull)
    );
    assert!(!told(&first) && !told(&second));
}

#[test]
fn unused_connections_go_first_then_slow_bodies_then_idle_ones() {
    let table = table(3, 3);
    let idle = table.admit(APISERVER, false).expect("slot");
    served(&idle);
    let slow = table.admit(FLOOD, false).expect("slot");
    slow.state().handshaken();
    let _slow_request = slow.state().request();
    let _receiving = slow.state().receiving();
    let unused = table.admit(FLOOD, false).expect("slot");
    unused.state().handshaken();

    let working = table.admit(FLOOD, false).expect("room is made");
    let _request = working.state().request();
    assert!(
        told(&unused),
        "the connection that never sent a request goes first"
    );
    assert!(!told(&slow) && !told(&idle));
    drop(unused);
    let _b = table.admit(FLOOD, false).expect("room is made");
    assert!(told(&slow), "then the slow body");
    assert!(
        !told(&idle),
        "the API server's idle connection is kept longest"
    );
    assert_eq!(table.len(), 3, "an evicted slot is not freed twice");
}

#[test]
fn the_slowest_body_goes_first() {
    let table = table(2, 2);
    let trickle = table.admit(FLOOD, false).expect("slot");
    let steady = table.admit(FLOOD, false).expect("slot");
    let mut requests = Vec::new();
    let mut bodies = Vec::new();
    for (slot, bytes) in [(&trickle, 10), (&steady, 64 * 1024)] {
        slot.state().handshaken();
        requests.push(slot.state().request());
        let receiving = slot.state().receiving();
        receiving.received(bytes);
        bodies.push(receiving);
    }
    assert_eq!(
        trickle.state().standing(Duration::ZERO).0,
        Standing::SlowBody
    );
    let _new = table.admit(APISERVER, false).expect("room is made");
    assert!(told(&trickle));
    assert!(!told(&steady));
}

#[test]
fn a_peer_at_its_cap_makes_room_among_its_own_connections_only() {
    let table = table(8, 2);
    let apiserver = table.admit(APISERVER, false).expect("slot");
    served(&apiserver);
    let first = table.admit(FLOOD, false).expect("slot");
    let second = table.admit(FLOOD, false).expect("slot");
    for slot in [&first, &second] {
        slot.state().handshaken();
    }
    // The flood's third connection pushes out its own oldest, not the API server's.
    let third = table.admit(FLOOD, false).expect("room among its own");
    assert!(told(&first));
    assert!(!told(&apiserver) && !told(&second));
    assert_eq!(table.len(), 3);

    // With every connection of its own working, the peer is refused, while others get in.
    let _w2 = second.state().request();
    let _w3 = third.state().request();
    assert_eq!(
        table.admit(FLOOD, false).map(|_| ()),
        Err(Refused::PeerFull)
    );
    assert!(table.admit(APISERVER, false).is_ok());
}

#[test]
fn a_full_table_takes_room_from_the_peer_holding_the_most() {
    let table = table(4, 4);
    let apiserver = table.admit(APISERVER, false).expect("slot");
    let flood: Vec<_> = (0..3)
        .map(|_| table.admit(FLOOD, false).expect("slot"))
        .collect();
    // All idle after serving a request.
    served(&apiserver);
    for slot in &flood {
        served(slot);
    }
    let _new = table
        .admit(Ipv4Addr::new(10, 0, 0, 7).into(), false)
        .expect("room");
    assert!(!told(&apiserver), "the peer with one connection keeps it");
    assert_eq!(
        flood.iter().filter(|s| told(s)).count(),
        1,
        "one of the flood's goes"
    );
}

#[test]
fn slots_are_freed_on_drop_and_idle_time_counts_only_without_requests() {
    let table = table(2, 2);
    let slot = table.admit(APISERVER, true).expect("slot");
    assert!(!slot.state().was_used());
    let request = slot.state().request();
    assert!(slot.state().was_used());
    assert_eq!(slot.state().idle_for(), Duration::ZERO);
    drop(request);
    assert!(slot.state().idle_for() < Duration::from_secs(60));
    drop(slot);
    assert!(table.is_empty());
    assert!(table.wait_empty().now_or_never().is_some());
}

#[test]
fn a_connection_about_to_send_its_first_request_goes_last() {
    let table = ConnectionTable::new(TableLimits {
        max: 2,
        per_peer: 2,
        fresh: Duration::from_secs(3600),
    });
    let idle = table.admit(FLOOD, false).expect("slot");
    served(&idle);
    let fresh = table.admit(APISERVER, false).expect("slot");
    fresh.state().handshaken();
    assert_eq!(
        fresh.state().standing(Duration::from_secs(3600)).0,
        Standing::Fresh
    );
    let _new = table.admit(FLOOD, false).expect("room");
    assert!(
        told(&idle),
        "an idle kept-alive connection goes before a fresh one"
    );
    assert!(!told(&fresh));
}

#[test]
fn among_idle_connections_the_most_recently_active_goes_first() {
    let table = table(2, 4);
    let long_lived = table.admit(APISERVER, false).expect("slot");
    served(&long_lived);
    std::thread::sleep(Duration::from_millis(20));
    let back_to_back = table.admit(APISERVER, false).expect("slot");
    served(&back_to_back);
    let _new = table.admit(APISERVER, false).expect("room");
    assert!(told(&back_to_back), "the connection just used goes");
    assert!(!told(&long_lived), "the one used now and then stays");
}

#[test]
fn a_peer_at_its_cap_never_closes_its_own_kept_alive_connections() {
    let table = table(8, 2);
    // The API server's connection and a flood's, both from the node's address.
    let apiserver = table.admit(APISERVER, false).expect("slot");
    served(&apiserver);
    let flood = table.admit(APISERVER, false).expect("slot");
    served(&flood);
    assert_eq!(
        table.admit(APISERVER, false).map(|_| ()),
        Err(Refused::PeerFull)
    );
    assert!(!told(&apiserver) && !told(&flood));
    // Another address still gets in, and may take the room of a kept-alive one.
    assert!(table.admit(FLOOD, false).is_ok());
}
