"""bench-admission.py KUBECONFIG N PLAIN_NS MESHED_NS: creates N pods of each of three kinds, one
at a time over one connection and taking turns (so a slow moment of the machine lands on all
alike): a plain pod in PLAIN_NS (the webhook skips it), the same pod in MESHED_NS (the webhook
injects it), and the pod exactly as the webhook injected it, created in PLAIN_NS (the bigger pod
without the webhook call). Prints the create latency p50/p99 of each, the p50 the webhook adds,
and how that splits between the webhook call and the API server's cost of the bigger pod."""
import copy
import statistics
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_api import Api, pending_pod  # noqa: E402


def has_sidecar(pod):
    return any(c["name"] == "sparrow-proxy" for c in pod["spec"].get("initContainers", []))


def create(api, ns, pod, injected):
    status, created, took = api.call("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    if status != 201:
        raise SystemExit(f"bench: creating a pod in {ns} answered {status}: {created}")
    if has_sidecar(created) != injected:
        raise SystemExit(f"bench: pod in {ns} injected={has_sidecar(created)}, expected {injected}")
    return created, took * 1000


def as_submitted(injected):
    """The webhook's result as a client would submit it: what the API server adds on create
    (identity, status, the service account token volume) taken out."""
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": copy.deepcopy(injected["spec"]),
           "metadata": {k: injected["metadata"][k] for k in ("labels", "annotations")
                        if k in injected["metadata"]}}
    spec = pod["spec"]
    for key in ("nodeName", "serviceAccountName", "serviceAccount"):
        spec.pop(key, None)
    token = [v["name"] for v in spec.get("volumes", []) if v["name"].startswith("kube-api-access-")]
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] not in token]
    for c in spec.get("initContainers", []) + spec["containers"]:
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["name"] not in token]
    return pod


def named(pod, name):
    pod = copy.deepcopy(pod)
    pod["metadata"]["name"] = name
    return pod


def p50_p99(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


kubeconfig, n, plain, meshed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
api = Api(kubeconfig)
# The first copy and warm connections are not what we measure.
for i in range(5):
    template, _ = create(api, meshed, pending_pod(f"warm{i}"), True)
api.call("DELETE", f"/api/v1/namespaces/{meshed}/pods")
pre_injected = as_submitted(template)
create(api, plain, named(pre_injected, "warm-pre"), True)
times = {"plain": [], "pre": [], "meshed": []}
for i in range(n):
    times["plain"].append(create(api, plain, pending_pod(f"p{i}"), False)[1])
    times["pre"].append(create(api, plain, named(pre_injected, f"pre{i}"), True)[1])
    times["meshed"].append(create(api, meshed, pending_pod(f"p{i}"), True)[1])
(p50_plain, p99_plain), (p50_pre, _), (p50_mesh, p99_mesh) = (
    p50_p99(times[k]) for k in ("plain", "pre", "meshed"))
print(f"{n} pods each: without the webhook p50 {p50_plain:.2f} ms p99 {p99_plain:.2f} ms; "
      f"injected p50 {p50_mesh:.2f} ms p99 {p99_mesh:.2f} ms; added p50 {p50_mesh - p50_plain:.2f} ms "
      f"(the webhook call {p50_mesh - p50_pre:+.2f} ms, the bigger pod without it "
      f"{p50_pre - p50_plain:+.2f} ms)")
