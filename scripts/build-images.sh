#!/usr/bin/env bash
# Builds the mesh's images reproducibly: static binaries of sparrow-controller, sparrow-proxy
# and sparrow-init (glibc, crt-static), the netfilter tree for the init image from Debian's
# packages, then an OCI image layout at target/images/ (ref names sparrow-controller:<tag>,
# sparrow-proxy:<tag>, sparrow-init:<tag>; tag = the crate version) and the same as one OCI
# archive, target/images/sparrow-images-<version>.tar. Prints each image's digest.
#
# The same commit gives the same digests: every mtime is SOURCE_DATE_EPOCH (default: the
# commit time), the labels name the commit, and nothing else varies (the init image also
# carries Debian's iptables and libc packages, so a Debian update changes its digest).
#
# Usage: scripts/build-images.sh [--profile release|dev] [--out DIR]
#   release (default): what ships (fat LTO, slow to build); dev: the same images from debug
#   static binaries, for tests.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
out=target/images
while [ $# -gt 0 ]; do
    case $1 in
        --profile) profile=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--profile release|dev] [--out DIR]" >&2; exit 2 ;;
    esac
done
case $profile in
    release | dev) ;;
    *) echo "error: --profile is release or dev, not $profile" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib/static-build.sh
. scripts/lib/static-build.sh
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
revision=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
source_url=${SPARROW_SOURCE_URL:-https://github.com/sparrow-mesh/sparrow}

static_build "$profile" -p sparrow-controller -p sparrow-proxy -p sparrow-init --bins
bin=$(static_bin_dir "$profile")
for binary in sparrow-controller sparrow-proxy sparrow-init; do
    if ldd "$bin/$binary" >/dev/null 2>&1 && ! ldd "$bin/$binary" 2>&1 | grep -q 'statically linked'; then
        echo "error: $bin/$binary is not static: $(ldd "$bin/$binary" | tr '\n' ' ')" >&2
        exit 1
    fi
done

# Debug binaries carry hundreds of megabytes of debug info: the images get stripped copies.
if [ "$profile" = dev ]; then
    stripped=target/images-cache/dev-bin
    mkdir -p "$stripped"
    for binary in sparrow-controller sparrow-proxy sparrow-init; do
        strip --strip-debug -o "$stripped/$binary" "$bin/$binary"
    done
    bin=$stripped
fi

scripts/netfilter-root.sh target/images-cache target/images-cache/netfilter-root

nice cargo build --quiet -p sparrow-image --bin sparrow-image
mkdir -p "$out"
target/debug/sparrow-image \
    --out "$out" \
    --controller "$bin/sparrow-controller" \
    --proxy "$bin/sparrow-proxy" \
    --init "$bin/sparrow-init" \
    --init-root target/images-cache/netfilter-root \
    --tag "$version" \
    --revision "$revision" \
    --source "$source_url" \
    --epoch "$SOURCE_DATE_EPOCH"
