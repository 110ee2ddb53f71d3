#!/usr/bin/env bash
# Assembles what sparrow-init needs in its image to program netfilter, from Debian's own
# packages: xtables-nft-multi and xtables-legacy-multi with the iptables/ip6tables names
# (multi-call: argv[0] picks the tool), their libraries, the dynamic loader, and the xtables
# extensions the redirect uses (standard, tcp, multiport, owner, comment, REDIRECT).
# Usage: scripts/netfilter-root.sh CACHE_DIR OUT_DIR
#   CACHE_DIR keeps the downloaded .deb files (apt-get download) between runs; OUT_DIR is
#   replaced. Verifies with the loader itself, inside OUT_DIR, that nothing is missing.
set -euo pipefail

cache=$1
out=$2
packages=(iptables libxtables12 libip4tc2 libip6tc2 libnftnl11 libmnl0 libc6)
extensions=(libxt_standard libxt_tcp libxt_multiport libxt_owner libxt_comment libxt_REDIRECT)
multiarch=x86_64-linux-gnu

mkdir -p "$cache/debs"
# One assembler at a time per cache (tests may run it concurrently).
exec 9>"$cache/lock"
flock 9
for package in "${packages[@]}"; do
    if ! compgen -G "$cache/debs/${package}_*.deb" >/dev/null; then
        # A machine that never ran apt-get update knows no packages: update once, then retry.
        if ! (cd "$cache/debs" && apt-get download -q "$package" >/dev/null 2>&1); then
            apt-get update -qq >/dev/null 2>&1 || true
            (cd "$cache/debs" && apt-get download -q "$package" >/dev/null 2>&1) || {
                echo "error: apt-get download $package failed: check that deb.debian.org is reachable (apt-get update)" >&2
                exit 1
            }
        fi
    fi
done

extract=$(mktemp -d)
trap 'rm -rf "$extract"' EXIT
for deb in "$cache"/debs/*.deb; do
    dpkg-deb -x "$deb" "$extract"
done

rm -rf "$out"
mkdir -p "$out/usr/sbin" "$out/usr/lib/$multiarch/xtables" "$out/lib/$multiarch" "$out/lib64"
cp -a "$extract/usr/sbin/xtables-nft-multi" "$extract/usr/sbin/xtables-legacy-multi" "$out/usr/sbin/"
for family in iptables ip6tables; do
    for suffix in "" -save -restore; do
        ln -s xtables-nft-multi "$out/usr/sbin/$family-nft$suffix"
        ln -s xtables-legacy-multi "$out/usr/sbin/$family-legacy$suffix"
        # The plain names follow Debian's default alternative: nft.
        ln -s xtables-nft-multi "$out/usr/sbin/$family$suffix"
    done
done
# Each library: its soname link and the file it points to.
for lib in libxtables.so.12 libip4tc.so.2 libip6tc.so.2 libnftnl.so.11 libmnl.so.0; do
    cp -a "$extract/usr/lib/$multiarch/$lib"* "$out/usr/lib/$multiarch/"
done
cp -a "$extract/lib/$multiarch/libc.so.6" "$extract/lib/$multiarch/ld-linux-x86-64.so.2" "$out/lib/$multiarch/"
cp -a "$extract/lib64/ld-linux-x86-64.so.2" "$out/lib64/"
for extension in "${extensions[@]}"; do
    file="$extract/usr/lib/$multiarch/xtables/$extension.so"
    cp -a "$file" "$out/usr/lib/$multiarch/xtables/"
    # REDIRECT is a link to libxt_NAT.so: take what it points to as well.
    if [ -L "$file" ]; then
        cp -a "$extract/usr/lib/$multiarch/xtables/$(readlink "$file")" "$out/usr/lib/$multiarch/xtables/"
    fi
done

# The loader inside the tree resolves every dependency from the tree alone (chroot), or the
# image would fail at run time.
for binary in usr/sbin/xtables-nft-multi usr/sbin/xtables-legacy-multi $(cd "$out" && ls usr/lib/$multiarch/xtables/*.so); do
    if ! listing=$(chroot "$out" /lib64/ld-linux-x86-64.so.2 --list "/$binary" 2>&1) || grep -q 'not found' <<<"$listing"; then
        echo "error: /$binary cannot be loaded from the netfilter tree: $listing" >&2
        exit 1
    fi
done
for tool in iptables-nft iptables-legacy; do
    chroot "$out" "/usr/sbin/$tool" --version >/dev/null
done
