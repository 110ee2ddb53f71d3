//! One module per verb.

pub mod completion;
pub mod deploy;
pub mod version;
