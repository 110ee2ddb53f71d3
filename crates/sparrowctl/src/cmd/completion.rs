//! `sparrowctl completion bash|zsh|fish`.

/// Writes the completion script for `shell` to stdout.
pub fn run<C: clap::CommandFactory>(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = C::command();
    clap_complete::generate(shell, &mut command, "sparrowctl", &mut std::io::stdout());
    Ok(())
}
