//! Progress of a multi-step command: a spinner on a terminal, plain lines otherwise
//! (CI logs, pipes), so output stays readable in both.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Reports steps as they finish.
pub struct Progress {
    spinner: Option<ProgressBar>,
}

impl Progress {
    /// A spinner when stdout is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let spinner = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { spinner }
    }

    /// Shows what is being done now (spinner only).
    pub fn working(&self, message: &str) {
        if let Some(bar) = &self.spinner {
            bar.set_message(message.to_owned());
        }
    }

    /// Prints a finished step.
    pub fn done(&self, message: &str) {
        match &self.spinner {
            Some(bar) => bar.println(format!("✓ {message}")),
            None => println!("✓ {message}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}
