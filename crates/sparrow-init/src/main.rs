//! `sparrow-init`: programs the pod's NAT table so its TCP traffic goes through sparrow-proxy.

use std::process::ExitCode;

fn main() -> ExitCode {
    sparrow_init::Args::parse_and_run()
}
