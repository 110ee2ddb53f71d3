//! The controller's half of the bad-input catalog: AdmissionReview bodies and HTTP behaviour
//! (methods, paths, content types, sizes, slow clients, HTTP/2), each case checked for its
//! HTTP status or AdmissionResponse, its one-line message, no panic (the server answers every
//! case and is still healthy after all of them), and no write to the cluster (testkube's
//! request counters).

mod http1;
mod http2;
mod reviews;
mod slow;
mod support;

use support::{Catalog, REVIEW};

/// One create of the pull-secret copy and the patch that adds its proof: the positive
/// control that the write counter counts.
async fn assert_one_copy_written(catalog: &Catalog, body: &[u8]) {
    catalog.cluster.reset_requests();
    let reply = catalog.post(body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.json()["response"]["patch"].is_string());
    let writes = catalog.writes();
    assert_eq!(
        writes,
        [
            (("create".to_owned(), "secrets".to_owned()), 1),
            (("patch".to_owned(), "secrets".to_owned()), 1)
        ],
        "the copy of an injected pod is written"
    );
}

async fn assert_still_healthy(catalog: &Catalog) {
    let reply = catalog
        .raw(&support::http_request("GET", "/healthz", &[], b""))
        .await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
}

fn report(what: &str, (count, failures): (usize, Vec<String>)) {
    println!("catalog: {what}: {count} cases, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {count} {what} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_review_bodies() {
    let catalog = Catalog::start().await;
    assert_one_copy_written(&catalog, REVIEW.as_bytes()).await;
    report("AdmissionReview bodies", reviews::run(&catalog).await);
    // `fresh` was only ever dry-run, annotated or skipped: its first real pod makes the copy.
    let in_fresh = support::review_with(|r| {
        r["request"]["namespace"] = "fresh".into();
        r["request"]["object"]["metadata"]["namespace"] = "fresh".into();
    });
    assert_one_copy_written(&catalog, &in_fresh).await;
    assert_still_healthy(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_methods_paths_types_and_sizes() {
    let catalog = Catalog::start().await;
    assert_one_copy_written(&catalog, REVIEW.as_bytes()).await;
    report("HTTP/1.1", http1::run(&catalog).await);
    assert_still_healthy(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_refusals_are_complete_responses() {
    let catalog = Catalog::start().await;
    assert_one_copy_written(&catalog, REVIEW.as_bytes()).await;
    report("HTTP/2", http2::run(&catalog).await);
    assert_still_healthy(&catalog).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    report("slow clients", slow::run().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_starve_healthz() {
    report("connection flood", slow::flood().await);
}

#[test]
fn catalog_size() {
    let total = reviews::cases().len() + http1::cases().len() + http2::CASES + slow::CASES;
    println!("catalog: {total} controller cases in all");
    assert!(total >= 80, "the catalog shrank to {total} cases");
}
