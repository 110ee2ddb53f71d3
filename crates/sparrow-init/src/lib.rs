//! The redirect of an injected pod's TCP traffic to sparrow-proxy, as linkerd2-proxy-init
//! does it: an inbound chain jumped to from PREROUTING and an outbound chain jumped to from
//! OUTPUT, written as one `iptables-restore` document ([`rules`], pure) and applied
//! atomically with `iptables-restore --noflush` on the backend the node uses ([`backend`]),
//! after reading `iptables-save` so that a second run replaces its chains instead of adding
//! to them ([`iptables`]).

#![deny(missing_docs)]

mod args;
pub mod backend;
mod error;
pub mod iptables;
pub mod rules;
pub mod subnet;

pub use args::{Args, IptablesMode};
pub use error::InitError;
