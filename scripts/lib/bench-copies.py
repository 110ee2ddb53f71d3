"""bench-copies.py setup|await|teardown KUBECONFIG N [USER]: N meshed namespaces bench-copy-<i>
with a pod each (so each gets a copy); await: until every copy's user is USER."""
import base64
import json
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_api import Api, pending_pod  # noqa: E402

LABEL = "injector.sparrow-mesh.io/auto-inject"


def setup(api, n):
    for i in range(n):
        ns = f"bench-copy-{i}"
        api.call("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": ns, "labels": {LABEL: "enabled", "sparrow-mesh.io/bench": "copies"}}})
    for i in range(n):
        ns = f"bench-copy-{i}"
        for _ in range(600):
            status, _, _ = api.call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/default")
            if status == 200:
                break
            time.sleep(0.1)
        status, body, _ = api.call("POST", f"/api/v1/namespaces/{ns}/pods", pending_pod("app"))
        if status != 201:
            raise SystemExit(f"bench: pod in {ns}: {status} {body}")


def users(api):
    _, body, _ = api.call("GET", "/api/v1/secrets?labelSelector=usage%3Dsparrow-registry-key")
    out = {}
    for s in body["items"]:
        ns = s["metadata"]["namespace"]
        if not ns.startswith("bench-copy-"):
            continue
        config = json.loads(base64.b64decode(s["data"][".dockerconfigjson"]))
        out[ns] = next(iter(config["auths"].values()))["username"]
    return out


def await_user(api, n, user):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        now = users(api)
        if len(now) == n and all(u == user for u in now.values()):
            return
        time.sleep(0.1)
    raise SystemExit(f"bench: copies not current after 600 s")


def teardown(api, n):
    for i in range(n):
        api.call("DELETE", f"/api/v1/namespaces/bench-copy-{i}")


verb, kubeconfig, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
api = Api(kubeconfig)
{"setup": lambda: setup(api, n), "teardown": lambda: teardown(api, n),
 "await": lambda: await_user(api, n, sys.argv[4])}[verb]()
