//! Times the registry preflight for the mesh's three images against a local docker-registry
//! (TLS, htpasswd): each run builds a fresh client, answers the auth challenge and checks the
//! three manifests concurrently, as `sparrowctl registry check` does.
//!
//! `cargo run --release -p sparrow-registry --example bench_check -- [RUNS] [BUDGET_MS]`
//! (or `scripts/bench-registry-check.sh`). Exits 1 when a check fails or the median is over budget.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sparrow_core::{ImageOverrides, Images, RegistryAuth, RegistryServer};
use sparrow_registry::{CheckOptions, all_passed, check_images};
use sparrow_registry_fixture::LocalRegistry;

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const TAG: &str = "0.1.0";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let budget = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(300));
    match bench(runs, budget).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("bench_check: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(runs: usize, budget: Duration) -> Result<ExitCode, String> {
    let registry = LocalRegistry::start(&[(USER, PASSWORD)])
        .await
        .map_err(|e| e.to_string())?;
    for name in ["sparrow-controller", "sparrow-proxy", "sparrow-init"] {
        registry
            .push_image(&format!("team/mesh/{name}"), TAG, Some((USER, PASSWORD)))
            .await
            .map_err(|e| e.to_string())?;
    }
    let server = RegistryServer::parse(&format!("{}/team/mesh", registry.authority()))
        .map_err(|e| e.to_string())?;
    let auth = RegistryAuth::user_password(USER, PASSWORD).map_err(|e| e.to_string())?;
    let images = Images::resolve(&server, TAG, &ImageOverrides::default());
    let options = CheckOptions {
        ca_pem: Some(registry.ca_pem().to_vec()),
        ..CheckOptions::default()
    };

    // One unmeasured run: the first pays for loading the system trust store from disk cache.
    let mut times = Vec::with_capacity(runs);
    for run in 0..=runs {
        let started = Instant::now();
        let checks = check_images(&server, Some(&auth), &images.all(), &options)
            .await
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        if !all_passed(&checks) {
            let lines: Vec<String> = checks.iter().map(ToString::to_string).collect();
            return Err(format!("run {run} failed:\n{}", lines.join("\n")));
        }
        if run > 0 {
            times.push(elapsed);
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "registry check, 3 images, {runs} runs: median {:.1} ms (min {:.1} ms, max {:.1} ms); budget {} ms",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        budget.as_millis()
    );
    Ok(if median <= budget {
        ExitCode::SUCCESS
    } else {
        eprintln!("median over budget");
        ExitCode::FAILURE
    })
}
