use super::*;

fn names() -> Vec<String> {
    vec![
        "sparrow-controller.sparrow-mesh.svc".to_owned(),
        "sparrow-controller.sparrow-mesh.svc.cluster.local".to_owned(),
    ]
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("test value")
}

fn lifetimes() -> Lifetimes {
    Lifetimes {
        leaf: Duration::minutes(2),
        ca: Duration::minutes(3),
        settle: Duration::seconds(10),
    }
}

/// The world the controller writes: the two Secrets and the bundle, each with the times it
/// was written, so that a reader lagging behind by some seconds can be modelled.
#[derive(Default)]
struct World {
    ca: Option<StoredCa>,
    leaves: Vec<(OffsetDateTime, WebhookTls)>,
    bundles: Vec<(OffsetDateTime, String)>,
    settled_since: Option<OffsetDateTime>,
    steps: Vec<&'static str>,
}

impl World {
    fn as_of<T: Clone>(history: &[(OffsetDateTime, T)], at: OffsetDateTime) -> Option<T> {
        history
            .iter()
            .rev()
            .find(|(written, _)| *written <= at)
            .map(|(_, v)| v.clone())
    }

    /// Applies steps until one waits; returns when to look again.
    fn reconcile(&mut self, now: OffsetDateTime) -> OffsetDateTime {
        for _ in 0..10 {
            let bundle = self.bundles.last().map(|(_, b)| b.clone());
            let leaf = self.leaves.last().map(|(_, l)| l.clone());
            let wanted = self.ca.as_ref().map(StoredCa::bundle);
            if bundle.is_some() && bundle == wanted {
                self.settled_since.get_or_insert(now);
            } else {
                self.settled_since = None;
            }
            let observed = Observed {
                ca: self.ca.as_ref(),
                leaf: leaf.as_ref(),
                bundle: Some(bundle.as_deref().unwrap_or("").as_bytes()),
                bundle_settled_since: self.settled_since,
            };
            let step = next_step(observed, &names(), lifetimes(), now).expect("test value");
            self.steps.push(step.describe());
            match step {
                Step::WriteCa(ca) => self.ca = Some(ca),
                Step::WriteBundle(b) => self.bundles.push((now, b)),
                Step::WriteLeaf(l) => self.leaves.push((now, l)),
                Step::Wait { until, .. } => return until,
            }
        }
        panic!("no wait after ten steps: {:?}", self.steps);
    }
}

#[test]
fn a_first_start_makes_a_ca_sets_the_bundle_then_issues_the_leaf() {
    let mut world = World {
        bundles: vec![(t0(), String::new())],
        ..World::default()
    };
    let next = world.reconcile(t0());
    assert_eq!(
        world.steps,
        [
            "writing the webhook CA",
            "setting the webhook's caBundle",
            "waiting"
        ]
    );
    // The leaf waits for the new bundle to reach the API server.
    assert_eq!(next, t0() + Duration::seconds(10));
    world.reconcile(next);
    let leaf = &world.leaves.last().expect("test value").1;
    let bundle = &world.bundles.last().expect("test value").1;
    assert!(bundle_verifies(bundle.as_bytes(), &leaf.cert_pem, next));
    assert!(key_fits(&leaf.cert_pem, &leaf.key_pem));
    let f = facts(&leaf.cert_pem).expect("test value");
    assert_eq!(f.dns_names, names());
    assert!(!f.is_ca);
}

#[test]
fn with_no_webhook_configuration_the_leaf_is_issued_at_once() {
    let ca = StoredCa {
        current: Ca::generate(t0(), Duration::minutes(3)).expect("test value"),
        previous_pem: None,
        previous_until: None,
    };
    let observed = Observed {
        ca: Some(&ca),
        leaf: None,
        bundle: None,
        bundle_settled_since: None,
    };
    assert!(matches!(
        next_step(observed, &names(), lifetimes(), t0()).expect("test value"),
        Step::WriteLeaf(_)
    ));
}

/// Twenty minutes of renewals and CA rollovers, looked at every second: whatever bundle the
/// API server holds (it lags by up to 8 s, under the settle time) verifies whatever leaf every
/// replica serves (also up to 8 s behind).
#[test]
fn renewals_and_rollovers_never_leave_a_served_leaf_unverified() {
    let mut world = World {
        bundles: vec![(t0(), String::new())],
        ..World::default()
    };
    let start = t0();
    let mut next = world.reconcile(start);
    let mut now = start;
    let lag = Duration::seconds(8);
    let mut checked = 0;
    while now < start + Duration::minutes(20) {
        now += Duration::seconds(1);
        if now >= next {
            next = world.reconcile(now);
        }
        if world.leaves.is_empty() || now < world.leaves[0].0 + lag {
            continue;
        }
        for served_at in [now, now - lag] {
            for bundle_at in [now, now - lag] {
                let Some(leaf) = World::as_of(&world.leaves, served_at) else {
                    continue;
                };
                let bundle = World::as_of(&world.bundles, bundle_at).expect("test value");
                assert!(
                    bundle_verifies(bundle.as_bytes(), &leaf.cert_pem, now),
                    "at +{}s the bundle of +{}s does not verify the leaf of +{}s; steps {:?}",
                    (now - start).whole_seconds(),
                    (bundle_at - start).whole_seconds(),
                    (served_at - start).whole_seconds(),
                    world.steps
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 4000);
    let rollovers = world
        .steps
        .iter()
        .filter(|s| s.starts_with("rolling"))
        .count();
    // A 3-minute CA rolled at two thirds: every 2 minutes.
    assert!(rollovers >= 8, "{rollovers} rollovers: {:?}", world.steps);
    assert!(world.leaves.len() > rollovers);
    // The old CA leaves the bundle after each rollover.
    assert_eq!(world.ca.as_ref().expect("test value").previous_pem, None);
}

#[test]
fn a_bundle_changed_by_someone_else_is_written_back() {
    let mut world = World {
        bundles: vec![(t0(), String::new())],
        ..World::default()
    };
    let next = world.reconcile(t0());
    world.reconcile(next);
    let good = world.bundles.last().expect("test value").1.clone();
    world.bundles.push((next, String::new()));
    world.steps.clear();
    world.reconcile(next + Duration::seconds(1));
    assert_eq!(world.steps[0], "setting the webhook's caBundle");
    assert_eq!(world.bundles.last().expect("test value").1, good);
    // The leaf stays: it is the current CA's.
    assert_eq!(world.leaves.len(), 1);
}

#[test]
fn a_leaf_deploy_made_keeps_its_ca_trusted_through_the_switch() {
    let legacy = WebhookTls::generate_for(&names(), t0()).expect("test value");
    let observed = Observed {
        ca: None,
        leaf: Some(&legacy),
        bundle: Some(legacy.ca_pem.as_bytes()),
        bundle_settled_since: Some(t0()),
    };
    let Step::WriteCa(ca) = next_step(observed, &names(), lifetimes(), t0()).expect("test value")
    else {
        panic!("a CA first");
    };
    assert_eq!(ca.previous_pem.as_deref(), Some(legacy.ca_pem.as_str()));
    let bundle = ca.bundle();
    assert!(bundle_verifies(bundle.as_bytes(), &legacy.cert_pem, t0()));
    assert!(bundle.starts_with(&ca.current.cert_pem));
}

#[test]
fn an_expired_or_foreign_leaf_is_replaced() {
    let ca = StoredCa {
        current: Ca::generate(t0(), Duration::minutes(30)).expect("test value"),
        previous_pem: None,
        previous_until: None,
    };
    let bundle = ca.bundle();
    let foreign = WebhookTls::generate_for(&names(), t0()).expect("test value");
    let wrong_names = ca
        .current
        .issue(&["elsewhere.svc".to_owned()], t0(), Duration::minutes(2))
        .expect("test value");
    let mut mismatched = ca
        .current
        .issue(&names(), t0(), Duration::minutes(2))
        .expect("test value");
    mismatched.key_pem = foreign.key_pem.clone();
    for leaf in [&foreign, &wrong_names, &mismatched] {
        let observed = Observed {
            ca: Some(&ca),
            leaf: Some(leaf),
            bundle: Some(bundle.as_bytes()),
            bundle_settled_since: Some(t0() - Duration::minutes(1)),
        };
        assert!(matches!(
            next_step(observed, &names(), lifetimes(), t0()).expect("test value"),
            Step::WriteLeaf(_)
        ));
    }
}

#[test]
fn a_leaf_never_outlives_its_ca() {
    let ca = Ca::generate(t0(), Duration::minutes(3)).expect("test value");
    let leaf = ca
        .issue(&names(), t0(), Duration::days(90))
        .expect("test value");
    assert_eq!(
        facts(&leaf.cert_pem).expect("test value").not_after,
        facts(&ca.cert_pem).expect("test value").not_after
    );
}

#[test]
fn verification_needs_a_signature_by_a_ca_of_the_bundle_valid_now() {
    let ca = Ca::generate(t0(), Duration::minutes(3)).expect("test value");
    let other = Ca::generate(t0(), Duration::minutes(3)).expect("test value");
    let leaf = ca
        .issue(&names(), t0(), Duration::minutes(2))
        .expect("test value");
    assert!(bundle_verifies(
        ca.cert_pem.as_bytes(),
        &leaf.cert_pem,
        t0()
    ));
    assert!(!bundle_verifies(
        other.cert_pem.as_bytes(),
        &leaf.cert_pem,
        t0()
    ));
    let both = format!("{}{}", other.cert_pem, ca.cert_pem);
    assert!(bundle_verifies(both.as_bytes(), &leaf.cert_pem, t0()));
    assert!(!bundle_verifies(
        ca.cert_pem.as_bytes(),
        &leaf.cert_pem,
        t0() + Duration::minutes(4)
    ));
    assert!(!bundle_verifies(b"", &leaf.cert_pem, t0()));
    assert!(!bundle_verifies(ca.cert_pem.as_bytes(), "not a pem", t0()));
    assert!(matches!(facts("junk"), Err(PkiError::NoCertificate)));
}
