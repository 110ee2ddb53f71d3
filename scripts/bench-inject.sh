#!/usr/bin/env bash
# Benchmark of the injection webhook: the release sparrow-controller binary served over TLS on
# 127.0.0.1, loaded by oha with keep-alive, posting the AdmissionReview of a typical
# three-container pod (crates/sparrow-controller/tests/fixtures/review-replicaset-pod.json).
#
# Prints: rps at full load, p50/p99 at full load and at a fixed 1,000 admissions/s, and the
# controller's RSS (peak and after the runs). Targets: >= 20,000/s, p99 < 2 ms at 1,000/s,
# RSS < 30 MB.
#
# The controller's API server is testkube (plain HTTP, loopback), with the mesh deployed: the
# admission path includes the namespace-label lookup and the pull-secret copy check, both
# answered from the controller's caches.
#
# Env: DURATION (seconds per run, default 10), CONNECTIONS (default 32), PORT (default 18443).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18443}
API_PORT=${API_PORT:-18080}
REVIEW="$ROOT/crates/sparrow-controller/tests/fixtures/review-replicaset-pod.json"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

OHA=${OHA:-$(command -v oha || true)}
if [[ -z "$OHA" ]]; then
    if [[ ! -x "$ROOT/target/tools/bin/oha" ]]; then
        echo "== installing oha (cargo install) into target/tools" >&2
        cargo install oha --locked --quiet --root "$ROOT/target/tools"
    fi
    OHA="$ROOT/target/tools/bin/oha"
fi

echo "== building sparrow-controller (release)" >&2
cargo build --release --quiet -p sparrow-controller --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/sparrow-controller"

echo "== serving certificate for 127.0.0.1" >&2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null

echo "== testkube (plain HTTP) with the mesh deployed and namespace shop" >&2
cargo build --release --quiet -p testkube -p sparrowctl --bins --manifest-path "$ROOT/Cargo.toml"
"$ROOT/target/release/testkube" serve --plain-http --addr "127.0.0.1:$API_PORT" \
    --kubeconfig-out "$WORK/kubeconfig" > "$WORK/testkube.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$WORK/testkube.log" 2>/dev/null && break; sleep 0.05; done
export KUBECONFIG="$WORK/kubeconfig" HOME="$WORK"
# The source pull secret exists, so every admission goes through the copy check: the first
# creates the copy in shop, every later one finds it current (no API call).
printf 'bench\n' | "$ROOT/target/release/sparrowctl" deploy --wait=false --skip-registry-check \
    --registry-server registry.example.com/mesh --registry-username robot --registry-password-stdin >/dev/null
kubectl create namespace shop >/dev/null

echo "== starting the controller on 127.0.0.1:$PORT" >&2
RUST_LOG=warn "$BIN" --addr "127.0.0.1:$PORT" \
    --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" --mesh-namespace sparrow-mesh \
    --sidecar-image registry.example.com/mesh/sparrow-proxy:0.1.0 \
    --init-image registry.example.com/mesh/sparrow-init:0.1.0 --log-format json &
CONTROLLER=$!
PIDS+=("$CONTROLLER")
ready=""
for _ in $(seq 1 100); do
    if curl -sfk "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$CONTROLLER" 2>/dev/null || { echo "controller exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$ready" ]] || { echo "controller not ready" >&2; exit 1; }

# Sanity: the benchmark body is really injected.
curl -sfk -H 'content-type: application/json' --data-binary "@$REVIEW" \
    "https://127.0.0.1:$PORT/inject" | grep -q '"patchType":"JSONPatch"' \
    || { echo "the review was not injected" >&2; exit 1; }

run() { # label, extra oha flags...
    local label=$1; shift
    "$OHA" --no-tui --insecure --output-format json -z "${DURATION}s" -m POST \
        -H 'content-type: application/json' -D "$REVIEW" "$@" \
        "https://127.0.0.1:$PORT/inject" > "$WORK/$label.json"
}

rss_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$CONTROLLER/status"; }
# utime + stime of the controller, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$CONTROLLER/stat"; }

echo "== full load: $CONNECTIONS connections, ${DURATION}s" >&2
CPU_BEFORE=$(cpu_ticks)
run full -c "$CONNECTIONS"
CPU_FULL=$(( $(cpu_ticks) - CPU_BEFORE ))
echo "== fixed rate: 1000/s, 8 connections, ${DURATION}s" >&2
run rate -c 8 -q 1000 --latency-correction

python3 - "$WORK/full.json" "$WORK/rate.json" "$(rss_kb VmHWM)" "$(rss_kb VmRSS)" "$(nproc)" \
    "$CPU_FULL" "$(getconf CLK_TCK)" <<'PY'
import json, sys
full, rate = (json.load(open(p)) for p in sys.argv[1:3])
hwm, rss, cores = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
cpu_seconds = int(sys.argv[6]) / int(sys.argv[7])
def summary(r):
    p = r["latencyPercentiles"]
    codes = r.get("statusCodeDistribution", {})
    ok = codes.get("200", 0)
    total = sum(codes.values())
    return r["summary"]["requestsPerSec"], p["p50"] * 1e3, p["p99"] * 1e3, ok, total
rps, p50, p99, ok, total = summary(full)
rrps, rp50, rp99, rok, rtotal = summary(rate)
print(f"machine: {cores} cores; load generator on the same machine")
print(f"full load:   {rps:,.0f} admissions/s  p50 {p50:.3f} ms  p99 {p99:.3f} ms  ({ok}/{total} HTTP 200)")
print(f"1,000/s:     {rrps:,.0f} admissions/s  p50 {rp50:.3f} ms  p99 {rp99:.3f} ms  ({rok}/{rtotal} HTTP 200)")
total_full = sum(full.get("statusCodeDistribution", {}).values()) or 1
print(f"controller CPU: {cpu_seconds:.1f} s for {total_full} admissions = {cpu_seconds / total_full * 1e6:.0f} µs each")
print(f"RSS:         peak {hwm/1024:.1f} MiB, now {rss/1024:.1f} MiB")
verdict = []
verdict.append(("throughput >= 20000/s", rps >= 20000))
verdict.append(("p99 < 2 ms at 1000/s", rp99 < 2.0))
verdict.append(("peak RSS < 30 MB", hwm * 1024 < 30e6))
verdict.append(("all answered 200", ok == total and rok == rtotal))
for name, passed in verdict:
    print(f"  {'PASS' if passed else 'FAIL'}  {name}")
PY
