#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/fuzz_targets for FUZZ_SECONDS each (default 300),
# on the stable toolchain (RUSTC_BOOTSTRAP=1, --sanitizer none), starting from the seeds in
# fuzz/seeds/<target>. Prints, per target, the executions and the crashes found (crash inputs
# are kept in fuzz/artifacts/<target>/; each one becomes a regression test).
#
# Installs cargo-fuzz with `cargo install` into target/tools when it is not on the PATH.
# Usage: scripts/fuzz.sh [TARGET...]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-300}
export RUSTC_BOOTSTRAP=1
export PATH="$ROOT/target/tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
    echo "== installing cargo-fuzz (cargo install) into target/tools" >&2
    cargo install cargo-fuzz --locked --quiet --root "$ROOT/target/tools"
fi
cd "$ROOT/fuzz"
# The fuzz crate has its own lock file; start from the workspace's so the versions are the same.
[[ -e Cargo.lock ]] || cp "$ROOT/Cargo.lock" Cargo.lock
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for file in fuzz_targets/*.rs; do targets+=("$(basename "$file" .rs)"); done
fi

status=0
summary=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    if [[ -d "seeds/$target" ]]; then cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true; fi
    before=$(find "artifacts/$target" -type f | wc -l)
    log=$(mktemp)
    echo "== $target: ${SECONDS_EACH}s" >&2
    set +e
    nice cargo fuzz run --sanitizer none "$target" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 >"$log" 2>&1
    code=$?
    set -e
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    crashes=$(( $(find "artifacts/$target" -type f | wc -l) - before ))
    if [[ $code -ne 0 && $crashes -eq 0 ]]; then
        echo "cargo fuzz failed for $target:" >&2
        tail -20 "$log" >&2
        status=1
    fi
    [[ $crashes -eq 0 ]] || status=1
    summary+=("$target: ${runs:-0} executions in ${SECONDS_EACH}s, $crashes new crash(es)")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit "$status"
