#!/usr/bin/env bash
# `sparrowctl deploy --dry-run` with credentials: median wall time over many runs (target < 20 ms).
# No network I/O: --dry-run contacts nothing. Also prints the release binary's size.
# Usage: scripts/bench-dry-run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release -q -p sparrowctl
bin=target/release/sparrowctl
python3 - "$bin" "$runs" <<'PY'
import statistics, subprocess, sys, time
binary, runs = sys.argv[1], int(sys.argv[2])
args = [binary, "deploy", "--dry-run", "--registry-server", "registry.example.com:5000/mesh",
        "--registry-username", "robot", "--registry-password-stdin"]
samples = []
for i in range(runs + 5):
    start = time.perf_counter()
    out = subprocess.run(args, input=b"s3cret\n", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        sys.exit(f"sparrowctl failed: {out.stderr.decode()}")
    if i >= 5:  # warm-up runs are not counted
        samples.append(elapsed)
samples.sort()
p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(f"deploy --dry-run (credentials, {runs} runs): median {statistics.median(samples):.1f} ms, "
      f"p90 {p(0.9):.1f} ms, min {samples[0]:.1f} ms (target < 20 ms)")
PY
size=$(stat -c %s "$bin")
echo "release binary: $bin $((size / 1024 / 1024)) MiB ($size bytes)"
