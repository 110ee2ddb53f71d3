//! The environment of the `sparrow-proxy` container, named once: the injector sets these
//! variables and the proxy reads its settings from them.

/// The inbound listener's address (`0.0.0.0:4143`).
pub const INBOUND_LISTEN_ADDR_ENV: &str = "SPARROW_PROXY_INBOUND_LISTEN_ADDR";
/// The outbound listener's address (`127.0.0.1:4140`).
pub const OUTBOUND_LISTEN_ADDR_ENV: &str = "SPARROW_PROXY_OUTBOUND_LISTEN_ADDR";
/// The admin server's address (`0.0.0.0:4191`).
pub const ADMIN_LISTEN_ADDR_ENV: &str = "SPARROW_PROXY_ADMIN_LISTEN_ADDR";
/// The mesh's namespace.
pub const CONTROL_PLANE_NAMESPACE_ENV: &str = "SPARROW_PROXY_CONTROL_PLANE_NAMESPACE";
/// The pod's name (from the downward API).
pub const POD_NAME_ENV: &str = "SPARROW_PROXY_POD_NAME";
/// The pod's namespace (from the downward API).
pub const POD_NAMESPACE_ENV: &str = "SPARROW_PROXY_POD_NAMESPACE";
/// How long open connections may take to finish after SIGTERM (`20s`); below the pod's
/// terminationGracePeriodSeconds so the proxy exits before the kubelet kills it.
pub const SHUTDOWN_GRACE_PERIOD_ENV: &str = "SPARROW_PROXY_SHUTDOWN_GRACE_PERIOD";
