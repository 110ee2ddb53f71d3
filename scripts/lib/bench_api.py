"""A minimal client for the node's API server (the admin kubeconfig's client certificate), for the
story's benchmarks: one kept-alive TLS connection, JSON in and out."""
import base64
import http.client
import json
import os
import re
import ssl
import tempfile
import time


def _field(text, name):
    match = re.search(rf"{name}: (\S+)", text)
    if not match:
        raise SystemExit(f"bench: no {name} in the kubeconfig")
    return match.group(1)


class Api:
    def __init__(self, kubeconfig):
        text = open(kubeconfig).read()
        server = _field(text, "server")
        host, port = server.removeprefix("https://").split(":")
        self._dir = tempfile.TemporaryDirectory()
        paths = {}
        for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
            path = os.path.join(self._dir.name, key)
            with open(path, "wb") as f:
                f.write(base64.b64decode(_field(text, key)))
            paths[key] = path
        ctx = ssl.create_default_context(cafile=paths["certificate-authority-data"])
        ctx.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])
        self._conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)

    def call(self, method, path, body=None):
        """Returns (status, parsed body, seconds the request took)."""
        data = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        self._conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = self._conn.getresponse()
        raw = resp.read()
        took = time.perf_counter() - start
        return resp.status, (json.loads(raw) if raw else None), took


def pending_pod(name):
    """A pod the webhook admits but no node runs."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeSelector": {"sparrow-mesh.io/bench": "no-such-node"},
                 "containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }
