//! One module per verb.

pub mod completion;
pub mod deploy;
pub mod images;
pub mod inject;
pub mod registry;
pub mod remove;
pub mod status;
pub mod version;
pub mod webhook_auth;
