"""bench-admission.py KUBECONFIG N PLAIN_NS MESHED_NS: creates N pods in each namespace, one at a
time over one connection and alternating between the two (so a slow moment of the machine lands
on both alike), and prints the create latency p50/p99 of each and the p50 added."""
import statistics
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_api import Api, pending_pod  # noqa: E402


def create(api, ns, name, injected):
    status, pod, took = api.call("POST", f"/api/v1/namespaces/{ns}/pods", pending_pod(name))
    if status != 201:
        raise SystemExit(f"bench: creating a pod in {ns} answered {status}: {pod}")
    has_sidecar = any(c["name"] == "sparrow-proxy" for c in pod["spec"].get("initContainers", []))
    if has_sidecar != injected:
        raise SystemExit(f"bench: pod in {ns} injected={has_sidecar}, expected {injected}")
    return took * 1000


def p50_p99(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


kubeconfig, n, plain, meshed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
api = Api(kubeconfig)
# The first copy and warm connections are not what we measure.
for i in range(5):
    create(api, meshed, f"warm{i}", True)
api.call("DELETE", f"/api/v1/namespaces/{meshed}/pods")
plain_times, meshed_times = [], []
for i in range(n):
    plain_times.append(create(api, plain, f"p{i}", False))
    meshed_times.append(create(api, meshed, f"p{i}", True))
p50_plain, p99_plain = p50_p99(plain_times)
p50_mesh, p99_mesh = p50_p99(meshed_times)
print(f"{n} pods each: without the webhook p50 {p50_plain:.2f} ms p99 {p99_plain:.2f} ms; "
      f"injected p50 {p50_mesh:.2f} ms p99 {p99_mesh:.2f} ms; added p50 {p50_mesh - p50_plain:.2f} ms")
