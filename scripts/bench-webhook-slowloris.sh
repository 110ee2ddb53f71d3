#!/usr/bin/env bash
# Slow-client benchmark of the webhook: the release sparrow-controller served over TLS on
# 127.0.0.1 while a client keeps CONNECTIONS (default 5,000) slow-body connections open against
# it: each sends the headers of a 1 MB POST /inject, then one body byte per second, and is
# reopened when the server closes it (bounded: HOLD seconds, at most 4 x CONNECTIONS opens).
# Meanwhile /healthz is probed PROBES times (a new TLS connection each, as the kubelet does).
#
# Prints: connections opened and how the server ended them, the connections the controller
# held, /healthz latency (p50, p99, max) and the controller's RSS (peak, sampled and VmHWM).
# Targets: /healthz < 100 ms, RSS < 30 MB.
#
# The controller's API server is testkube (plain HTTP, loopback) with the mesh deployed, as in
# scripts/bench-inject.sh. Raises the file-descriptor limit for itself and its children.
#
# Env: CONNECTIONS (default 5000), HOLD (seconds, default 30), PROBES (default 50),
# PORT (default 18444), API_PORT (default 18081); PROFILE=dev checks the script itself
# quickly (its figures mean nothing: only release figures are recorded).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONNECTIONS=${CONNECTIONS:-5000}
HOLD=${HOLD:-30}
PROBES=${PROBES:-50}
PORT=${PORT:-18444}
API_PORT=${API_PORT:-18081}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Each connection is a descriptor on both sides; leave room for the controller's own.
ulimit -n "$(( CONNECTIONS * 2 + 4096 ))"

PROFILE=${PROFILE:-release}
echo "== building sparrow-controller, testkube, sparrowctl ($PROFILE)" >&2
# The static binaries the controller image ships (scripts/build-images.sh builds the same ones).
# shellcheck source=scripts/lib/static-build.sh
. "$ROOT/scripts/lib/static-build.sh"
(cd "$ROOT" && static_build "$PROFILE" -p sparrow-controller -p testkube -p sparrowctl --bins)
OUT="$ROOT/$(static_bin_dir "$PROFILE")"
BIN="$OUT/sparrow-controller"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null

echo "== testkube (plain HTTP) with the mesh deployed and namespace shop" >&2
"$OUT/testkube" serve --plain-http --addr "127.0.0.1:$API_PORT" \
    --kubeconfig-out "$WORK/kubeconfig" > "$WORK/testkube.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$WORK/testkube.log" 2>/dev/null && break; sleep 0.05; done
export KUBECONFIG="$WORK/kubeconfig" HOME="$WORK"
printf 'bench\n' | "$OUT/sparrowctl" deploy --wait=false --skip-registry-check \
    --registry-server registry.example.com/mesh --registry-username robot --registry-password-stdin >/dev/null
kubectl create namespace shop >/dev/null

echo "== starting the controller on 127.0.0.1:$PORT" >&2
RUST_LOG=error "$BIN" --addr "127.0.0.1:$PORT" \
    --tls-cert "$WORK/tls.crt" --tls-key "$WORK/tls.key" --mesh-namespace sparrow-mesh \
    --log-format json > "$WORK/controller.log" 2>&1 &
CONTROLLER=$!
PIDS+=("$CONTROLLER")
ready=""
for _ in $(seq 1 100); do
    if curl -sfk "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$CONTROLLER" 2>/dev/null || { echo "controller exited" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$ready" ]] || { echo "controller not ready" >&2; exit 1; }
IDLE_RSS=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$CONTROLLER/status")

echo "== $CONNECTIONS slow-body connections for ${HOLD}s" >&2
python3 - "$PORT" "$CONNECTIONS" "$HOLD" "$WORK/client.json" "$WORK/holding" <<'PY' &
import asyncio, json, ssl, sys, time
port, wanted, hold, out, marker = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
head = (b"POST /inject HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: 1000000\r\n\r\n{")
stats = {"opened": 0, "open_failures": 0, "closed_by_server": 0, "answered": {}, "peak_open": 0}
open_now = 0
budget = 4 * wanted
deadline = time.monotonic() + hold
handshakes = asyncio.Semaphore(64)

async def slot():
    global open_now, budget
    while time.monotonic() < deadline and budget > 0:
        budget -= 1
        try:
            async with handshakes:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 10)
            writer.write(head)
            await writer.drain()
        except Exception:
            stats["open_failures"] += 1
            await asyncio.sleep(0.2)
            continue
        stats["opened"] += 1
        open_now += 1
        stats["peak_open"] = max(stats["peak_open"], open_now)
        try:
            while time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                except asyncio.TimeoutError:
                    writer.write(b" ")
                    await writer.drain()
                    continue
                if data:
                    status = data.split(b" ", 2)[1].decode(errors="replace") if b" " in data else "?"
                    stats["answered"][status] = stats["answered"].get(status, 0) + 1
                stats["closed_by_server"] += 1
                break
        except Exception:
            stats["closed_by_server"] += 1
        finally:
            open_now -= 1
            writer.close()

async def main():
    tasks = [asyncio.create_task(slot()) for _ in range(wanted)]
    # Holding once every slot has opened once (or after a third of the time).
    while stats["opened"] < wanted and time.monotonic() < deadline - 2 * hold / 3:
        await asyncio.sleep(0.1)
    open(marker, "w").write(str(open_now))
    await asyncio.gather(*tasks)
    stats["open_at_marker"] = int(open(marker).read())
    json.dump(stats, open(out, "w"))

asyncio.run(main())
PY
CLIENT=$!
PIDS+=("$CLIENT")
while [[ ! -e "$WORK/holding" ]]; do
    kill -0 "$CLIENT" 2>/dev/null || { echo "the client exited early" >&2; exit 1; }
    sleep 0.1
done

PEAK_RSS=0
PEAK_FDS=0
sample() {
    local rss fds
    rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$CONTROLLER/status")
    fds=$(ls "/proc/$CONTROLLER/fd" | wc -l)
    (( rss > PEAK_RSS )) && PEAK_RSS=$rss
    (( fds > PEAK_FDS )) && PEAK_FDS=$fds
    return 0
}
: > "$WORK/probes"
for _ in $(seq 1 "$PROBES"); do
    sample
    curl -sk --max-time 5 -o /dev/null -w '%{http_code} %{time_total}\n' \
        "https://127.0.0.1:$PORT/healthz" >> "$WORK/probes" || echo "000 5" >> "$WORK/probes"
    sleep 0.1
done
sample
wait "$CLIENT"
HWM=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$CONTROLLER/status")

python3 - "$WORK/client.json" "$WORK/probes" "$IDLE_RSS" "$PEAK_RSS" "$HWM" "$PEAK_FDS" "$CONNECTIONS" "$HOLD" <<'PY'
import json, sys
client = json.load(open(sys.argv[1]))
probes = [l.split() for l in open(sys.argv[2]) if l.strip()]
idle, peak, hwm, fds, wanted, hold = (int(x) for x in sys.argv[3:9])
ok = [float(t) * 1e3 for code, t in probes if code == "200"]
lat = sorted(ok) or [float("inf")]
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"client: {wanted} slow-body connections wanted for {hold}s: {client['opened']} opened, "
      f"{client['open_at_marker']} open when probing began, peak {client['peak_open']} open at once, "
      f"{client['closed_by_server']} closed by the server (answers: {client['answered'] or 'none'}), "
      f"{client['open_failures']} failed to open")
print(f"controller: at most {fds} file descriptors open (the connection table holds 256)")
print(f"/healthz: {len(ok)}/{len(probes)} answered 200; p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms")
print(f"RSS: idle {idle/1024:.1f} MiB, peak sampled {peak/1024:.1f} MiB, VmHWM {hwm/1024:.1f} MiB")
for name, passed in [("/healthz max < 100 ms", lat[-1] < 100 and len(ok) == len(probes)),
                     ("peak RSS < 30 MB", hwm * 1024 < 30e6)]:
    print(f"  {'PASS' if passed else 'FAIL'}  {name}")
PY
