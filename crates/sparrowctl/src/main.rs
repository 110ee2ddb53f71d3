//! `sparrowctl`: parse the command line, run it, and turn the outcome into an exit code.

fn main() -> std::process::ExitCode {
    sparrowctl::Cli::parse_and_run()
}
