# Sourced. The static binaries the images ship (glibc, crt-static), built with the explicit
# --target that keeps build scripts and proc-macros dynamic (they run on this host). The
# benchmarks measure these same binaries.
#   static_build PROFILE CARGO_ARGS...   builds them
#   static_bin_dir PROFILE               where they are
STATIC_TRIPLE=x86_64-unknown-linux-gnu

static_build() {
    local profile=$1
    shift
    RUSTFLAGS="-C target-feature=+crt-static" nice cargo build --quiet --profile "$profile" \
        --target "$STATIC_TRIPLE" "$@"
}

static_bin_dir() {
    case $1 in
        dev) echo "target/$STATIC_TRIPLE/debug" ;;
        *) echo "target/$STATIC_TRIPLE/$1" ;;
    esac
}
