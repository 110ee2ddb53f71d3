#!/usr/bin/env bash
# Rotation fan-out with the release binaries against testkube (loopback only): N namespaces
# each hold a pod that carries the sidecar; the controller, started after deploy, makes their N
# copies itself (only copies it proves it made are rotated, so none is written by hand here);
# `sparrowctl registry update` changes the source; we time until the controller reports every
# copy updated, check that each copy holds the new data, and read the controller's own counters
# (one write per copy) and its RSS.
# Targets: 1,000 copies < 2 s, 10,000 copies < 20 s, controller RSS < 50 MB with 10,000 known.
# With --external the source is a Secret another tool keeps (`deploy --registry-secret`): the
# rotation is a rewrite of that Secret through the API, as external-secrets would do it
# (target: 1,000 copies current < 5 s).
# With --plugin a kubelet credential-provider plugin keeps the source (the project's test
# plugin, speaking the kubelet's protocol): its credential file is rewritten and the controller's
# next scheduled run (defaultCacheDuration 1m: about 30 s later) changes the source; timed from
# that change to every copy current (target < 5 s), with the controller's wall time of one plugin
# run and its RSS before and after.
# Usage: scripts/bench-rotation.sh [--external|--plugin] [COPIES...]   (default: 1000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=static
case "${1:-}" in
  --external) mode=external; shift ;;
  --plugin) mode=plugin; shift ;;
esac
export BENCH_MODE=$mode
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
cargo build --release -q -p sparrowctl -p testkube -p sparrow-controller -p sparrow-credential-provider --bins
for copies in "${sizes[@]}"; do
  python3 - "$copies" <<'PY'
import base64, hashlib, http.client, json, os, re, socket, ssl, subprocess, sys, tempfile, time

copies = int(sys.argv[1])
work = tempfile.mkdtemp()
mode = os.environ.get("BENCH_MODE", "static")
external = mode == "external"
plugin = mode == "plugin"
TAG = "0.1.0"
images = [f"127.0.0.1:5000/team/mesh/sparrow-{n}:{TAG}" for n in ("controller", "proxy", "init")]
cred_file = f"{work}/credential"
plugin_config = f"{work}/credential-provider.yaml"
bin_dir = os.path.abspath("target/release")
def external_secret(user, password):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {"127.0.0.1:5000": {"username": user, "password": password, "auth": auth}}})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ext-pull", "namespace": "sparrow-mesh"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}}
env = dict(os.environ, HOME=work, KUBECONFIG=f"{work}/kubeconfig")
procs = []
def start(args, log):
    p = subprocess.Popen(args, stdout=open(f"{work}/{log}", "w"), stderr=subprocess.STDOUT, env=env)
    procs.append(p); return p
def wait_for(what, cond, limit=60):
    start_t = time.time()
    while not cond():
        if time.time() - start_t > limit: sys.exit(f"timed out: {what}")
        time.sleep(0.02)
try:
    start(["target/release/testkube", "serve", "--plain-http", "--kubeconfig-out", env["KUBECONFIG"]], "testkube.log")
    wait_for("testkube", lambda: "listening" in open(f"{work}/testkube.log").read())
    url = re.search(r"listening on (\S+)", open(f"{work}/testkube.log").read()).group(1)
    host, port = url.split("//")[1].split(":")
    api = http.client.HTTPConnection(host, int(port))
    def call(method, path, body=None, ctype="application/json"):
        api.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": ctype})
        r = api.getresponse(); data = r.read()
        if r.status >= 300: sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
        return json.loads(data)
    def data_hash(data):
        h = hashlib.sha256()
        for k in sorted(data):
            v = base64.b64decode(data[k]); kb = k.encode()
            h.update(len(kb).to_bytes(8, "big")); h.update(kb); h.update(len(v).to_bytes(8, "big")); h.update(v)
        return h.hexdigest()
    # Injected pods first (before the webhook exists), as if the mesh had been removed and is
    # deployed again: the new controller owes each namespace its copy.
    t = time.time()
    for i in range(copies):
        ns = f"app-{i}"
        call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        call("POST", f"/api/v1/namespaces/{ns}/pods", {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app", "annotations": {"injector.sparrow-mesh.io/status": "injected"}},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}})
    print(f"[{copies} copies] {copies} namespaces with an injected pod created in {time.time() - t:.1f}s")
    credential = ["--registry-username", "robot", "--registry-password-stdin"]
    if external:
        call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sparrow-mesh"}})
        call("POST", "/api/v1/namespaces/sparrow-mesh/secrets", external_secret("robot", "first"))
        credential = ["--registry-secret", "ext-pull"]
    if plugin:
        open(cred_file, "w").write("robot:first")
        open(plugin_config, "w").write(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n"
            "- name: sparrow-test-credential-provider\n  matchImages: [\"127.0.0.1:5000\"]\n"
            "  defaultCacheDuration: 1m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
            f"  args: [--credential-file, {cred_file}]\n")
        credential = ["--registry-credential-provider", plugin_config,
                      "--credential-provider-image", "127.0.0.1:5000/team/mesh/credential-providers:1",
                      "--credential-provider-bin-dir", bin_dir, "--image-tag", TAG]
    ok = subprocess.run(["target/release/sparrowctl", "deploy", "--wait=false", "--skip-registry-check",
        "--registry-server", "127.0.0.1:5000/team/mesh"] + credential,
        input=b"first\n", env=env, capture_output=True)
    if ok.returncode: sys.exit(ok.stderr.decode())
    s = socket.socket(); s.bind(("127.0.0.1", 0)); cport = s.getsockname()[1]; s.close()
    # The controller makes its own certificates (and the webhook's caBundle), as in a cluster.
    ctl = start(["target/release/sparrow-controller", "--addr", f"127.0.0.1:{cport}",
        "--mesh-namespace", "sparrow-mesh", "--log-format", "json"]
        + (["--registry-secret", "ext-pull"] if external else [])
        + (["--credential-provider-config", plugin_config, "--credential-provider-bin-dir", bin_dir,
            "--credential-provider", "sparrow-test-credential-provider",
            "--registry-server", "127.0.0.1:5000/team/mesh",
            "--sidecar-image", images[1], "--init-image", images[2]] if plugin else []), "controller.log")
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    def get(path):
        c = http.client.HTTPSConnection("127.0.0.1", cport, context=ctx, timeout=2)
        try:
            c.request("GET", path); r = c.getresponse(); return r.status, r.read().decode()
        except OSError:
            return 0, ""
    wait_for("controller ready", lambda: get("/readyz")[0] == 200)
    t = time.time()
    def metric(name):
        text = get("/metrics")[1]
        m = re.search(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0
    wait_for("every owed copy made", lambda: metric("sparrow_pull_secret_copies_created") >= copies, 120)
    print(f"[{copies} copies] the controller made the {copies} owed copies {time.time() - t:.1f}s after it was ready")
    wait_for("leader elected and idle", lambda: metric("sparrow_pull_secret_stale_copies") == 0, 30)
    t0 = time.time()
    source = "ext-pull" if external else "sparrow-registry-key"
    def source_hash():
        return data_hash(call("GET", f"/api/v1/namespaces/sparrow-mesh/secrets/{source}")["data"])
    rss_before = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{ctl.pid}/status").read()).group(1)) / 1024
    if plugin:
        old_hash = source_hash()
        open(cred_file, "w").write("robot2:second")
        wait_for("the plugin's next run to change the source", lambda: source_hash() != old_hash, 120)
        print(f"[{copies} copies] the controller's scheduled plugin run changed the source {time.time() - t0:.1f}s after the plugin's credential changed (defaultCacheDuration 1m)")
        t0 = time.time()
        how = "the plugin's run changed the source"
    elif external:
        call("PUT", "/api/v1/namespaces/sparrow-mesh/secrets/ext-pull", external_secret("robot2", "second"))
        how = "the Secret another tool keeps was rewritten"
    else:
        ok = subprocess.run(["target/release/sparrowctl", "registry", "update", "--skip-registry-check",
            "--registry-username", "robot2", "--registry-password-stdin"], input=b"second\n", env=env, capture_output=True)
        if ok.returncode: sys.exit(ok.stderr.decode())
        how = "`registry update`"
    wait_for("every copy updated", lambda: metric("sparrow_pull_secret_copies_updated") >= copies, 120)
    elapsed = time.time() - t0
    new_hash = data_hash(call("GET", f"/api/v1/namespaces/sparrow-mesh/secrets/{source}")["data"])
    listed = call("GET", "/api/v1/secrets?labelSelector=usage%3Dsparrow-registry-key")["items"]
    current = sum(1 for s in listed if s["metadata"]["namespace"] != "sparrow-mesh" and data_hash(s["data"]) == new_hash)
    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{ctl.pid}/status").read()).group(1)) / 1024
    hwm = int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{ctl.pid}/status").read()).group(1)) / 1024
    target = (5 if external or plugin else 2) if copies <= 1000 else 20
    if plugin:
        runs = [json.loads(l) for l in open(f"{work}/controller.log") if "took_ms" in l]
        took = [r.get("fields", r).get("took_ms") for r in runs]
        print(f"[{copies} copies] plugin runs by the controller: {len(took)}, wall time each (ms): {took}")
        print(f"[{copies} copies] controller RSS before the rotation {rss_before:.1f} MiB")
    print(f"[{copies} copies] rotation fan-out: every copy current {elapsed:.2f}s after {how} (target < {target} s)")
    print(f"[{copies} copies] copies holding the new data: {current} of {copies}")
    print(f"[{copies} copies] controller counters: updated {metric('sparrow_pull_secret_copies_updated'):.0f}, "
          f"created {metric('sparrow_pull_secret_copies_created'):.0f}, sync errors {metric('sparrow_pull_secret_sync_errors'):.0f} "
          f"(one write per copy: updated == {copies})")
    print(f"[{copies} copies] controller RSS {rss:.1f} MiB, peak {hwm:.1f} MiB (target < 50 MB)")
finally:
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
PY
done
