"""bench-admission.py KUBECONFIG N PLAIN_NS MESHED_NS: creates N pods in each namespace, one at a
time over one connection, and prints the create latency p50/p99 of each and the p50 added."""
import statistics
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_api import Api, pending_pod  # noqa: E402


def run(api, ns, n, injected):
    times = []
    for i in range(n):
        status, pod, took = api.call("POST", f"/api/v1/namespaces/{ns}/pods", pending_pod(f"p{i}"))
        if status != 201:
            raise SystemExit(f"bench: creating a pod in {ns} answered {status}: {pod}")
        has_sidecar = any(c["name"] == "sparrow-proxy" for c in pod["spec"].get("initContainers", []))
        if has_sidecar != injected:
            raise SystemExit(f"bench: pod in {ns} injected={has_sidecar}, expected {injected}")
        times.append(took * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


kubeconfig, n, plain, meshed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
api = Api(kubeconfig)
run(api, meshed, 5, True)  # the first copy and warm connections are not what we measure
api.call("DELETE", f"/api/v1/namespaces/{meshed}/pods")
p50_plain, p99_plain = run(api, plain, n, False)
p50_mesh, p99_mesh = run(api, meshed, n, True)
print(f"{n} pods each: without the webhook p50 {p50_plain:.2f} ms p99 {p99_plain:.2f} ms; "
      f"injected p50 {p50_mesh:.2f} ms p99 {p99_mesh:.2f} ms; added p50 {p50_mesh - p50_plain:.2f} ms")
