#!/usr/bin/env bash
# The data plane's cost, proxied and direct in the same run (as root). Two "pods", each a network
# namespace with sparrow-init's redirect and sparrow-proxy as uid 2102, joined by a veth pair:
# the client pod's outbound hop and the server pod's inbound hop carry port 8080; port 8081 is in
# both skip lists, so the same namespaces, link and server measure the direct path.
#   scripts/bench-dataplane.sh            (BENCH_RR=20000 BENCH_BYTES=1073741824 BENCH_CONNS=32 to change)
# Prints request/response latency p50/p99 (64-byte messages, one connection), one-connection
# throughput, and the proxies' RSS idle and at their peak under load.
# Throughput is measured twice: on the bare veth, where everything runs on this machine's
# cores and the CPU is the bound, and with the veth shaped to a node's link (BENCH_LINK, a tc
# rate, default 10gbit; tbf on both ends), where the link is.
set -euo pipefail
cd "$(dirname "$0")/.."
RR=${BENCH_RR:-20000}
BYTES=${BENCH_BYTES:-1073741824}
CONNS=${BENCH_CONNS:-32}
LINK=${BENCH_LINK:-10gbit}
[ "$(id -u)" = 0 ] || { echo "bench-dataplane: run as root (network namespaces, iptables)" >&2; exit 1; }
command -v xtables-nft-multi >/dev/null || { echo "bench-dataplane: needs iptables (apt-get install iptables)" >&2; exit 1; }

# The static release binaries the images ship (scripts/build-images.sh builds the same ones).
# shellcheck source=scripts/lib/static-build.sh
. scripts/lib/static-build.sh
static_build release -p sparrow-proxy -p sparrow-init --bins --example bench_dataplane
BIN=$(static_bin_dir release)
LOAD=$BIN/examples/bench_dataplane

tag=$$
CLIENT=spb-client-$tag
SERVER=spb-server-$tag
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$CLIENT" 2>/dev/null || true
  ip netns del "$SERVER" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$CLIENT"
ip netns add "$SERVER"
ip -n "$CLIENT" link add eth0 type veth peer name eth0 netns "$SERVER"
for pair in "$CLIENT 10.78.0.1" "$SERVER 10.78.0.2"; do
  set -- $pair
  ip -n "$1" link set lo up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
done
common=(--incoming-proxy-port 4143 --outgoing-proxy-port 4140 --proxy-uid 2102 --iptables-mode nft)
ip netns exec "$CLIENT" "$BIN/sparrow-init" "${common[@]}" --inbound-ports-to-ignore 4191 --outbound-ports-to-ignore 8081 2>/dev/null
ip netns exec "$SERVER" "$BIN/sparrow-init" "${common[@]}" --inbound-ports-to-ignore 4191,8081 2>/dev/null

declare -A proxy
for ns in "$CLIENT" "$SERVER"; do
  RUST_LOG=warn nsenter --net="/run/netns/$ns" --setuid 2102 --setgid 2102 -- "$BIN/sparrow-proxy" &
  proxy[$ns]=$!
  pids+=("$!")
done
ip netns exec "$SERVER" "$LOAD" server 0.0.0.0:8080 &
pids+=("$!")
ip netns exec "$SERVER" "$LOAD" server 0.0.0.0:8081 &
pids+=("$!")
# Ready: both admin ports answer and both server ports accept (bounded wait).
for _ in $(seq 1 300); do
  if ip netns exec "$CLIENT" curl -fs -o /dev/null http://10.78.0.1:4191/ready &&
     ip netns exec "$SERVER" curl -fs -o /dev/null http://10.78.0.2:4191/ready &&
     ip netns exec "$SERVER" bash -c 'exec 3<>/dev/tcp/10.78.0.2:8081' 2>/dev/null; then
    break
  fi
  sleep 0.1
done

rss() { awk -v k="$2:" '$1 == k { print $2 / 1024 }' "/proc/$1/status"; }
in_client() { ip netns exec "$CLIENT" "$LOAD" "$@"; }

idle_c=$(rss "${proxy[$CLIENT]}" VmRSS); idle_s=$(rss "${proxy[$SERVER]}" VmRSS)
in_client rr 10.78.0.2:8081 1000 64 >/dev/null   # warm-up
in_client rr 10.78.0.2:8080 1000 64 >/dev/null
read -r d50 d99 < <(in_client rr 10.78.0.2:8081 "$RR" 64)
read -r p50 p99 < <(in_client rr 10.78.0.2:8080 "$RR" 64)
d_tp=$(in_client stream 10.78.0.2:8081 "$BYTES")
p_tp=$(in_client stream 10.78.0.2:8080 "$BYTES")
for ns in "$CLIENT" "$SERVER"; do
  tc -n "$ns" qdisc add dev eth0 root tbf rate "$LINK" burst 1mb latency 20ms
done
l_d_tp=$(in_client stream 10.78.0.2:8081 "$BYTES")
l_p_tp=$(in_client stream 10.78.0.2:8080 "$BYTES")
for ns in "$CLIENT" "$SERVER"; do tc -n "$ns" qdisc del dev eth0 root; done
in_client load 10.78.0.2:8080 "$CONNS" 2000 1024
peak_c=$(rss "${proxy[$CLIENT]}" VmHWM); peak_s=$(rss "${proxy[$SERVER]}" VmHWM)
now_c=$(rss "${proxy[$CLIENT]}" VmRSS)

awk -v d50="$d50" -v d99="$d99" -v p50="$p50" -v p99="$p99" -v dtp="$d_tp" -v ptp="$p_tp" \
    -v ic="$idle_c" -v is="$idle_s" -v pc="$peak_c" -v ps="$peak_s" -v nc="$now_c" \
    -v rr="$RR" -v bytes="$BYTES" -v conns="$CONNS" -v link="$LINK" -v ldtp="$l_d_tp" -v lptp="$l_p_tp" 'BEGIN {
  printf "request/response, 64 B, %d sequential on one connection (client pod outbound -> server pod inbound)\n", rr
  printf "  direct:  p50 %.1f us  p99 %.1f us\n", d50, d99
  printf "  proxied: p50 %.1f us  p99 %.1f us  (added per hop: p50 %.1f us, p99 %.1f us)\n", p50, p99, (p50 - d50) / 2, (p99 - d99) / 2
  printf "throughput, %d MiB on one connection\n", bytes / 1048576
  printf "  bare veth (CPU-bound):  direct %d MB/s, proxied %d MB/s: %.0f%% of direct\n", dtp, ptp, 100 * ptp / dtp
  printf "  %s link (tbf):      direct %d MB/s, proxied %d MB/s: %.0f%% of direct\n", link, ldtp, lptp, 100 * lptp / ldtp
  printf "proxy RSS: idle %.1f MiB (client pod) / %.1f MiB (server pod); peak under load (%d connections) %.1f / %.1f MiB; client after load %.1f MiB\n", ic, is, conns, pc, ps, nc
}'
