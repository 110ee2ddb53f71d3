//! Progress of a multi-step command: a spinner on a terminal; plain lines otherwise (CI
//! logs, pipes), one per step, and a heartbeat line while waiting, so a log never goes
//! quiet for minutes.

use std::future::Future;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain-line heartbeat is printed while waiting.
const HEARTBEAT: Duration = Duration::from_secs(10);

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
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { spinner }
    }

    /// Shows what is being done now (spinner only: plain output prints finished steps).
    pub fn working(&self, message: &str) {
        if let Some(bar) = &self.spinner {
            bar.set_message(message.to_owned());
        }
    }

    /// Prints a line as it is (above the spinner on a terminal).
    pub fn line(&self, message: &str) {
        match &self.spinner {
            Some(bar) => bar.println(message),
            None => crate::say!("{message}"),
        }
    }

    /// Prints a finished step.
    pub fn done(&self, message: &str) {
        match &self.spinner {
            Some(bar) => bar.println(format!("✓ {message}")),
            None => crate::say!("✓ {message}"),
        }
    }

    /// Runs `future`, showing `message` while it runs: on a terminal in the spinner, else
    /// as a line now and a heartbeat line every ten seconds.
    pub async fn waiting<T>(&self, message: &str, future: impl Future<Output = T>) -> T {
        if self.spinner.is_some() {
            self.working(message);
            return future.await;
        }
        crate::say!("… {message}");
        let start = tokio::time::Instant::now();
        let mut ticks = tokio::time::interval_at(start + HEARTBEAT, HEARTBEAT);
        tokio::pin!(future);
        loop {
            tokio::select! {
                output = &mut future => return output,
                _ = ticks.tick() => {
                    crate::say!("… still {message} ({}s)", start.elapsed().as_secs());
                }
            }
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
