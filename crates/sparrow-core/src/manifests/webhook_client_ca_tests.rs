//! `--webhook-client-ca`: the CA's ConfigMap, the controller's flag and the volume it reads.

use super::*;
use crate::client_ca::test_ca;
use crate::config::MeshConfig;

fn pod_spec(plane: &ControlPlane) -> PodSpec {
    plane
        .objects
        .iter()
        .find_map(|o| match o {
            Object::Deployment(d) => d.spec.as_ref()?.template.spec.clone(),
            _ => None,
        })
        .expect("the controller's pod spec")
}

fn client_ca_map(plane: &ControlPlane) -> Option<&ConfigMap> {
    plane.objects.iter().find_map(|o| match o {
        Object::ConfigMap(map) => Some(map),
        _ => None,
    })
}

#[test]
fn without_a_client_ca_nothing_asks_for_client_certificates() {
    let plane = ControlPlane::render(&MeshConfig::default());
    assert!(client_ca_map(&plane).is_none());
    let pod = pod_spec(&plane);
    let args = pod.containers[0].args.clone().unwrap_or_default();
    assert!(
        !args.iter().any(|a| a.starts_with("--webhook-client-ca")),
        "{args:?}"
    );
    let volumes = pod.volumes.unwrap_or_default();
    assert!(
        volumes.iter().all(|v| v.config_map.is_none()),
        "{volumes:?}"
    );
}

#[test]
fn the_client_ca_is_a_marked_config_map_the_controller_mounts_and_reads() {
    let ca = test_ca("API server client CA");
    let config = MeshConfig {
        namespace: "team".to_owned(),
        webhook_client_ca: Some(ca.clone()),
        ..MeshConfig::default()
    };
    let plane = ControlPlane::render(&config);

    let map = client_ca_map(&plane).expect("the client CA's ConfigMap");
    assert_eq!(map.metadata.name.as_deref(), Some(WEBHOOK_CLIENT_CA_NAME));
    assert_eq!(map.metadata.namespace.as_deref(), Some("team"));
    assert_eq!(
        map.metadata.labels.as_ref().and_then(|l| l.get(MESH_LABEL)),
        Some(&"team".to_owned()),
        "marked as this mesh's, so remove finds it"
    );
    let data = map.data.clone().unwrap_or_default();
    assert_eq!(
        data.get(WEBHOOK_CLIENT_CA_KEY).map(String::as_str),
        Some(ca.pem())
    );
    assert_eq!(data.len(), 1);

    // Applied before the Deployment that mounts it.
    let order: Vec<Kind> = plane.objects.iter().map(Object::kind).collect();
    let at = |kind| order.iter().position(|k| *k == kind).expect("rendered");
    assert!(at(Kind::ConfigMap) < at(Kind::Deployment), "{order:?}");

    let pod = pod_spec(&plane);
    let volume = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.config_map.is_some())
        .expect("a ConfigMap volume");
    assert_eq!(
        volume.config_map.map(|c| c.name).as_deref(),
        Some(WEBHOOK_CLIENT_CA_NAME)
    );
    let container = &pod.containers[0];
    let mount = container
        .volume_mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.name == volume.name)
        .expect("mounted");
    assert_eq!(mount.read_only, Some(true));
    assert_eq!(
        mount.sub_path, None,
        "a subPath mount would never see a new CA"
    );
    let args = container.args.clone().unwrap_or_default();
    let flag = format!(
        "--webhook-client-ca={}/{WEBHOOK_CLIENT_CA_KEY}",
        mount.mount_path
    );
    assert!(args.contains(&flag), "{args:?}");
    assert_eq!(
        controller_args(&config)
            .iter()
            .filter(|a| **a == flag)
            .count(),
        1
    );
}

#[test]
fn the_rendered_client_ca_holds_no_key() {
    let config = MeshConfig {
        webhook_client_ca: Some(test_ca("API server client CA")),
        ..MeshConfig::default()
    };
    let plane = ControlPlane::render(&config);
    let map = serde_json::to_string(&client_ca_map(&plane).expect("rendered")).expect("json");
    assert!(map.contains("BEGIN CERTIFICATE"));
    assert!(!map.contains("PRIVATE KEY"));
}
