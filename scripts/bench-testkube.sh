#!/usr/bin/env bash
# Load figures for testkube: 10,000 secrets across 1,000 namespaces created, listed cluster-wide
# by label selector and watched; prints the median create round trip and the server's RSS.
# Targets: server RSS < 200 MB, median create < 1 ms on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p testkube --bin testkube --example bench

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

./target/release/testkube serve --addr 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" > "$work/out" 2> "$work/err" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^listening on' "$work/out" 2>/dev/null && break
  sleep 0.1
done
grep '^listening on' "$work/out" || { echo "testkube did not start" >&2; cat "$work/err" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }
echo "server RSS before load:   $(( $(rss_kb) / 1024 )) MB"
KUBECONFIG="$work/kubeconfig" ./target/release/examples/bench
echo "server RSS after load:    $(( $(rss_kb) / 1024 )) MB (peak $(( $(hwm_kb) / 1024 )) MB)"
