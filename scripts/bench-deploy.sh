#!/usr/bin/env bash
# Cluster operations against testkube (release builds, loopback only):
#  - sparrowctl deploy (converging, --wait=false): median of many runs (target < 200 ms);
#  - kubectl apply -f of the --dry-run output against the same server, for comparison (ratio);
#  - sparrowctl remove --yes with 1,000 copies of the pull secret (target < 2 s).
# Usage: scripts/bench-deploy.sh [RUNS] [COPIES]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
copies=${2:-1000}
cargo build --release -q -p sparrowctl -p testkube --bins
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export HOME="$work" KUBECONFIG="$work/kubeconfig"

target/release/testkube serve --plain-http --kubeconfig-out "$KUBECONFIG" > "$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/serve.log")
echo "testkube at $url"

target/release/sparrowctl deploy --dry-run --registry-server registry.example.com:5000/mesh \
  --registry-username robot --registry-password-stdin <<< "s3cret" > "$work/plane.yaml"

python3 - "$url" "$runs" "$copies" "$work" <<'PY'
import http.client, json, statistics, subprocess, sys, time, urllib.parse
url, runs, copies, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def timed(args, stdin=None):
    start = time.perf_counter()
    out = subprocess.run(args, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {out.stderr.decode()}")
    return elapsed

deploy = ["target/release/sparrowctl", "deploy", "--wait=false", "--skip-registry-check",
          "--registry-server", "registry.example.com:5000/mesh", "--registry-username", "robot",
          "--registry-password-stdin"]
first = timed(deploy, b"s3cret\n")
ours = sorted(timed(deploy, b"s3cret\n") for _ in range(runs))
kubectl = ["kubectl", "apply", "-f", f"{work}/plane.yaml"]
timed(kubectl)  # fills kubectl's discovery cache, as a user's second apply would have it
theirs = sorted(timed(kubectl) for _ in range(max(3, runs // 4)))
m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
print(f"sparrowctl deploy: first {first:.1f} ms, converging median {m_ours:.1f} ms over {runs} runs (target < 200 ms)")
print(f"kubectl apply -f (same objects): median {m_theirs:.1f} ms over {len(theirs)} runs")
print(f"ratio kubectl/sparrowctl: {m_theirs / m_ours:.1f}x ({'sparrowctl faster' if m_ours < m_theirs else 'kubectl faster'})")

# 1,000 copies, as the controller would have made them, in 1,000 namespaces.
target = urllib.parse.urlparse(url)
conn = http.client.HTTPConnection(target.hostname, target.port)
def post(path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse(); data = response.read()
    if response.status >= 300:
        sys.exit(f"POST {path}: {response.status} {data[:200]!r}")
dockerconfig = "eyJhdXRocyI6e319"  # {"auths":{}}
for i in range(copies):
    ns = f"bench-{i}"
    post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    post(f"/api/v1/namespaces/{ns}/secrets", {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
         "metadata": {"name": "sparrow-registry-key", "labels": {"usage": "sparrow-registry-key"}},
         "data": {".dockerconfigjson": dockerconfig}})
remove = timed(["target/release/sparrowctl", "remove", "--yes"])
print(f"sparrowctl remove --yes with {copies} copies: {remove:.0f} ms (target < 2000 ms)")
left = subprocess.run(["kubectl", "get", "secrets", "-l", "usage=sparrow-registry-key", "-A", "--no-headers"],
                      capture_output=True, text=True).stdout.strip()
print(f"labelled secrets left after remove: {len(left.splitlines()) if left else 0}")
PY
