# shellcheck shell=bash
# Helpers of scripts/quickstart.sh (the real-node story): printing steps, awaiting conditions,
# registry users and pushes. Sourced; needs ROOT and WORK set by the caller.

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n==> %d. %s\n' "$step_no" "$*"
}
show() {
  printf '$ %s\n' "$*"
  "$@"
}
ok() { printf '  ✓ %s\n' "$*"; }
checks=0
check() {
  checks=$((checks + 1))
  ok "$@"
}
fail() {
  echo "quickstart: FAILED: $*" >&2
  if [ -n "${STORY_NS:-}" ] && command -v kubectl >/dev/null; then
    echo "--- pods and recent events (namespaces sparrow-mesh and $STORY_NS):" >&2
    kubectl get pods -n sparrow-mesh -o wide >&2 2>/dev/null || true
    kubectl get pods -n "$STORY_NS" -o wide >&2 2>/dev/null || true
    kubectl get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -15 >&2 || true
    kubectl -n sparrow-mesh logs deploy/sparrow-controller --tail=15 >&2 2>/dev/null || true
  fi
  exit 1
}

# await SECONDS WHAT CMD...: polls CMD every half second until it succeeds; fails the story
# naming WHAT after SECONDS.
await() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${limit} s waiting for $what"
    sleep 0.5
  done
}

# A fresh random password in a file of its own (mode 600): the password is never printed, never an
# argument, and reaches every command on stdin.
new_password_file() {
  local file=$WORK/$1.password
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$file")
  echo "$file"
}

# registry_user NAME PASSWORD_FILE: adds NAME to the node's registry or changes its password.
registry_user() {
  "$ROOT/scripts/local-cluster.sh" registry-user "$1" <"$2" >/dev/null
}

# push_app LAYOUT TAG REFERENCE USER PASSWORD_FILE: copies one image of an OCI layout to the
# registry with skopeo, as USER (an auth file, so the password is never an argument).
push_app() {
  local layout=$1 tag=$2 ref=$3 user=$4 pwfile=$5 auth
  auth=$(printf '%s:%s' "$user" "$(cat "$pwfile")" | base64 -w0)
  (umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}' "$SPARROW_REGISTRY" "$auth" >"$WORK/auth.json")
  skopeo copy -q --retry-times 3 --dest-cert-dir "$WORK/certs" --dest-authfile "$WORK/auth.json" \
    "oci:$layout:$tag" "docker://$ref"
  rm -f "$WORK/auth.json"
}

# The first pod of a Deployment (by its app label), newest first.
newest_pod() {
  kubectl -n "$STORY_NS" get pods -l "app=$1" --sort-by=.metadata.creationTimestamp \
    -o 'jsonpath={.items[-1:].metadata.name}'
}

# pod_events POD NAMESPACE REASON: the messages of the pod's Events with that reason (Pulled, Pulling).
pod_events() {
  kubectl -n "$2" get events --field-selector "involvedObject.name=$1,reason=$3" \
    -o 'jsonpath={range .items[*]}{.message}{"\n"}{end}'
}

# The registry's log lines of containerd's authorized manifest requests for REPO, counted from line
# FROM of the log: the kubelet's pulls, as the registry saw them (a request without valid
# credentials is never "authorized"; images already on the node would not be fetched again).
registry_pulls() {
  local repo=$1 from=$2
  tail -n "+$from" "$SPARROW_NODE_STATE/log/registry.log" |
    grep -F 'msg="authorized request"' | grep -F 'useragent="containerd' |
    grep -cE "http.request.uri=\"?/v2/$repo/manifests/" || true
}
registry_log_lines() { wc -l <"$SPARROW_NODE_STATE/log/registry.log"; }
