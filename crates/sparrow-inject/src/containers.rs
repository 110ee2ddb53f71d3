//! The two containers injection adds: `sparrow-init` (iptables redirect) and `sparrow-proxy`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Probe, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sparrow_core::names::{INIT_CONTAINER, PROXY_CONTAINER};

use crate::InjectConfig;
use crate::ports::{PortRange, join_ranges};

/// The proxy's inbound listener: inbound traffic is redirected here.
pub const INBOUND_PORT: u16 = 4143;
/// The proxy's outbound listener: outbound traffic is redirected here.
pub const OUTBOUND_PORT: u16 = 4140;
/// The proxy's admin port (readiness, liveness, metrics); never redirected.
pub const ADMIN_PORT: u16 = 4191;
/// The proxy runs as this user; the redirect exempts its own traffic by this uid.
pub const PROXY_UID: i64 = 2102;

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

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
/// ready when its admin port says so.
pub fn proxy_container(config: &InjectConfig) -> Container {
    Container {
        name: PROXY_CONTAINER.to_owned(),
        image: Some(config.proxy_image.clone()),
        image_pull_policy: config.pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(vec![
            port("sparrow-proxy", INBOUND_PORT),
            port("sparrow-admin", ADMIN_PORT),
        ]),
        env: Some(vec![
            env(
                "SPARROW_PROXY_INBOUND_LISTEN_ADDR",
                format!("0.0.0.0:{INBOUND_PORT}"),
            ),
            env(
                "SPARROW_PROXY_OUTBOUND_LISTEN_ADDR",
                format!("127.0.0.1:{OUTBOUND_PORT}"),
            ),
            env(
                "SPARROW_PROXY_ADMIN_LISTEN_ADDR",
                format!("0.0.0.0:{ADMIN_PORT}"),
            ),
            env(
                "SPARROW_PROXY_CONTROL_PLANE_NAMESPACE",
                config.mesh_namespace.clone(),
            ),
            field_env("SPARROW_PROXY_POD_NAME", "metadata.name"),
            field_env("SPARROW_PROXY_POD_NAMESPACE", "metadata.namespace"),
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
    // The admin port must stay reachable for the kubelet's probes.
    let mut inbound = vec![PortRange {
        first: ADMIN_PORT,
        last: ADMIN_PORT,
    }];
    inbound.extend_from_slice(skip_inbound);
    inbound.sort();
    inbound.dedup();
    let mut args = vec![
        "--incoming-proxy-port".to_owned(),
        INBOUND_PORT.to_string(),
        "--outgoing-proxy-port".to_owned(),
        OUTBOUND_PORT.to_string(),
        "--proxy-uid".to_owned(),
        PROXY_UID.to_string(),
        "--inbound-ports-to-ignore".to_owned(),
        join_ranges(&inbound),
    ];
    if !skip_outbound.is_empty() {
        args.push("--outbound-ports-to-ignore".to_owned());
        args.push(join_ranges(skip_outbound));
    }
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
