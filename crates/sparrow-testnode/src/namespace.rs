//! A namespace of one's own per test, removed when the test ends (pass or fail).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{Node, wait_until};

/// A namespace created for one test; dropped, it is deleted (without waiting).
pub struct TestNamespace {
    node: &'static Node,
    /// The namespace's name: `t-<purpose>-<unique suffix>`.
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestNamespace {
    /// Creates `t-<purpose>-<pid><n>` and waits for its `default` ServiceAccount, which the
    /// ServiceAccount admission plugin needs before any pod can be created in it.
    pub fn create(node: &'static Node, purpose: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("t-{purpose}-{}{n}", std::process::id());
        node.kubectl(&["create", "namespace", &name]);
        let ns = Self { node, name };
        wait_until(
            &format!("the default ServiceAccount in {}", ns.name),
            Duration::from_secs(120),
            || {
                let out = node
                    .kubectl_output(&["-n", &ns.name, "get", "serviceaccount", "default"], None)
                    .ok()?;
                out.status.success().then_some(())
            },
        );
        ns
    }

    /// kubectl in this namespace.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.node.kubectl(&all)
    }

    /// `kubectl get ... -o json` in this namespace.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.node.get_json(&all)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let _ = self
            .node
            .kubectl_output(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}
