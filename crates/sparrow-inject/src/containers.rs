//! The two containers injection adds: `sparrow-init` (iptables redirect) and `sparrow-proxy`.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Probe, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sparrow_core::names::{INIT_CONTAINER, PROXY_CONTAINER};
use sparrow_core::quantities;

use crate::ports::PortRange;
use crate::proxy_env::{
    ADMIN_LISTEN_ADDR_ENV, CONTROL_PLANE_NAMESPACE_ENV, INBOUND_LISTEN_ADDR_ENV,
    OUTBOUND_LISTEN_ADDR_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV,
};
use crate::redirect::RedirectFlags;
use crate::{InjectConfig, SidecarKind};

/// The proxy's inbound listener: inbound traffic is redirected here.
pub const INBOUND_PORT: u16 = 4143;
/// The proxy's outbound listener: outbound traffic is redirected here.
pub const OUTBOUND_PORT: u16 = 4140;
/// The proxy's admin port (readiness, liveness, metrics); never redirected.
pub const ADMIN_PORT: u16 = 4191;
/// The proxy runs as this user; the redirect exempts its own traffic by this uid.
pub const PROXY_UID: i64 = 2102;

fn port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value),
        value_from: None,
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field_path.to_owned(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn admin_probe(path: &str, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(ADMIN_PORT)),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// The `sparrow-proxy` sidecar: non-root, read-only root filesystem, no privilege escalation,
/// ready when its admin port says so. A native sidecar ([`SidecarKind::Native`]) goes among
/// the init containers with `restartPolicy: Always` and a startup probe on /ready; a classic
/// one among the containers.
pub fn proxy_container(config: &InjectConfig) -> Container {
    let mut container = Container {
        name: PROXY_CONTAINER.to_owned(),
        image: Some(config.proxy_image.clone()),
        image_pull_policy: config.pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(vec![
            port("sparrow-proxy", INBOUND_PORT),
            port("sparrow-admin", ADMIN_PORT),
        ]),
        env: Some(vec![
            env(INBOUND_LISTEN_ADDR_ENV, format!("0.0.0.0:{INBOUND_PORT}")),
            env(
                OUTBOUND_LISTEN_ADDR_ENV,
                format!("127.0.0.1:{OUTBOUND_PORT}"),
            ),
            env(ADMIN_LISTEN_ADDR_ENV, format!("0.0.0.0:{ADMIN_PORT}")),
            env(CONTROL_PLANE_NAMESPACE_ENV, config.mesh_namespace.clone()),
            field_env(POD_NAME_ENV, "metadata.name"),
            field_env(POD_NAMESPACE_ENV, "metadata.namespace"),
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "100m"), ("memory", "20Mi")])),
            limits: Some(quantities(&[("memory", "250Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(PROXY_UID),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["ALL".to_owned()]),
            }),
            ..SecurityContext::default()
        }),
        readiness_probe: Some(admin_probe("/ready", 2)),
        liveness_probe: Some(admin_probe("/live", 10)),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    };
    if config.sidecar == SidecarKind::Native {
        // A restartable init container: the kubelet starts the next containers once the
        // startup probe passes (the application never starts before the proxy listens) and
        // stops it after the application containers, so Jobs complete.
        container.restart_policy = Some("Always".to_owned());
        container.startup_probe = Some(startup_probe());
    }
    container
}

/// Polls /ready every second for up to two minutes: the application waits at most a second
/// longer than the proxy needs to bind its listeners.
fn startup_probe() -> Probe {
    Probe {
        period_seconds: Some(1),
        failure_threshold: Some(120),
        ..admin_probe("/ready", 0)
    }
}

/// The `sparrow-init` container: installs the iptables redirect to the proxy, so it needs
/// NET_ADMIN and NET_RAW and runs as root (iptables refuses otherwise), even when the pod
/// asks for non-root. `skip_inbound` / `skip_outbound` come from the pod's annotations.
pub fn init_container(
    config: &InjectConfig,
    skip_inbound: &[PortRange],
    skip_outbound: &[PortRange],
) -> Container {
    let args = RedirectFlags::for_pod(skip_inbound, skip_outbound).to_args();
    Container {
        name: INIT_CONTAINER.to_owned(),
        image: Some(config.init_image.clone()),
        image_pull_policy: config.pull_policy.map(|p| p.as_str().to_owned()),
        args: Some(args),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "10Mi")])),
            limits: Some(quantities(&[("cpu", "100m"), ("memory", "50Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            run_as_non_root: Some(false),
            run_as_user: Some(0),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()]),
                drop: Some(vec!["ALL".to_owned()]),
            }),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}
