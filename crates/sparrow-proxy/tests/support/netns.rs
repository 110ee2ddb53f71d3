//! Network namespaces for the tests, as istio/ztunnel's harness runs them: setns is per
//! thread, so each piece of code meant for a namespace runs on a thread of its own that
//! joined it, with a current-thread runtime. Namespaces are deleted and threads stopped on
//! drop, also when a test fails.

use std::fs::File;
use std::future::Future;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use nix::sched::{CloneFlags, setns};
use tokio::sync::oneshot;

/// A named network namespace (`ip netns add`), loopback up.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace with a unique name (`sp-<tag>-<pid>-<n>`).
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sp-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bind mount, for nsenter and setns.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Runs `make()`'s future on a thread inside the namespace until it ends or the task is
    /// dropped.
    pub fn spawn<F, Fut, T>(&self, make: F) -> NsTask<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = self.path();
        let (cancel, cancelled) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            enter(&path);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime");
            runtime.block_on(async move {
                tokio::select! {
                    value = make() => Some(value),
                    _ = cancelled => None,
                }
            })
        });
        NsTask {
            cancel: Some(cancel),
            thread: Some(thread),
        }
    }

    /// Runs `make()`'s future inside the namespace and waits for its result.
    pub fn block_on<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        self.spawn(make).join()
    }

    /// Runs blocking code inside the namespace (child processes it starts inherit it).
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|_| panic!("code in the namespace panicked"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn enter(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
}

/// A future running on its namespace's thread.
pub struct NsTask<T> {
    cancel: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Option<T>>>,
}

impl<T> NsTask<T> {
    /// Waits for the future's value (a panic inside is re-raised here).
    pub fn join(mut self) -> T {
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(Some(value)) => value,
            Ok(None) => panic!("the task was cancelled"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T> Drop for NsTask<T> {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            let _ = cancel.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) -> Output {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (install iproute2 and run as root): {e}"));
    assert!(
        output.status.success(),
        "ip {} failed (these tests need root): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
