#!/usr/bin/env bash
# The README's main job: the Sparrow Mesh story on a real Kubernetes node of this machine
# (scripts/local-cluster.sh: kube-apiserver, kubelet, containerd, a private registry with TLS and
# htpasswd, all in a network namespace of their own), step by step, every step checked:
#   the mesh's images pushed to the private registry as a robot user, `registry check`, `deploy`
#   (the controller's image pulled by the kubelet through sparrow-registry-key), a labelled
#   namespace whose server and client pods are injected (native sidecar) and pull with the copy,
#   the client calling the server through both proxies, an injected Job that completes, a
#   credential rotation, and `remove`.
#
# Usage: scripts/quickstart.sh [--embedded]
#   --embedded   the older story on the embedded test cluster (testkube): no node, nothing pulled
# Environment (all optional):
#   SPARROW_CLUSTER_NETNS, SPARROW_NODE_API_PORT, SPARROW_NODE_REGISTRY_PORT: which node instance
#                (default: the node's default instance; a running node is reused, left running)
#   SPARROW_BIN_DIR          a directory holding a built sparrowctl (default: built here)
#   SPARROW_IMAGES           an OCI layout of the mesh's images (default: scripts/build-images.sh)
#   SPARROW_IMAGES_PROFILE   release (default) or dev: what build-images.sh builds
#   SPARROW_STORY_NAMESPACE  the application's namespace (default shop)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ "${1:-}" = "--embedded" ]; then
  shift
  exec scripts/lib/quickstart-embedded.sh "$@"
fi
[ $# -eq 0 ] || { echo "usage: scripts/quickstart.sh [--embedded]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "quickstart: run it as root (the node runs containers)" >&2; exit 1; }
command -v go >/dev/null || [ ! -x /usr/local/go/bin/go ] || PATH=/usr/local/go/bin:$PATH

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STORY_NS=${SPARROW_STORY_NAMESPACE:-shop}
[[ $STORY_NS =~ ^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$ ]] ||
  { echo "quickstart: SPARROW_STORY_NAMESPACE=$STORY_NS is not a namespace name" >&2; exit 2; }
# shellcheck source=lib/story.sh
source "$ROOT/scripts/lib/story.sh"
# shellcheck source=lib/story-steps.sh
source "$ROOT/scripts/lib/story-steps.sh"

started=$SECONDS
story_node_up
story_build
story_clean_leftovers
story_push_mesh_images
story_registry_check
story_deploy
story_application
story_traffic
story_rotation
story_remove
printf '\nquickstart: every step passed (%d checks) in %d s\n' "$checks" "$((SECONDS - started))"
echo "The node keeps running: eval \"\$(scripts/local-cluster.sh env)\" to use it," \
  "scripts/local-cluster.sh down to stop it."
