//! `sparrow-proxy`: the mesh's sidecar.

use std::process::ExitCode;

fn main() -> ExitCode {
    sparrow_proxy::Args::parse_and_run()
}
