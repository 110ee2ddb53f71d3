//! `sparrowctl completion bash|zsh|fish`.

use anyhow::Context as _;

/// Writes the completion script for `shell` to stdout (a closed stdout ends it quietly).
pub fn run<C: clap::CommandFactory>(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = C::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "sparrowctl", &mut script);
    crate::output::write_all(&script).context("writing to stdout")
}
