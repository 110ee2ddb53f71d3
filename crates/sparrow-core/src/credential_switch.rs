//! `registry update` switching the kind of the mesh's registry credential on a running control
//! plane (Sparrow's own Secret <-> a Secret another tool keeps): what the controller
//! Deployment runs now, and the guarded JSON Patch that changes only what it pulls with and
//! copies.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::names::{
    CONTROLLER_NAME, CREDENTIAL_PROVIDER_CONFIG_ARG, PULL_SECRET_NAME, REGISTRY_SECRET_ARG,
};
use crate::registry::RegistryServer;

/// The credential the deployed controller copies into meshed namespaces, as its Deployment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployedCredential {
    /// Sparrow's own Secret `sparrow-registry-key`, written from credential flags (`static`).
    Own,
    /// A Secret another tool keeps (`--registry-secret NAME`).
    External(String),
    /// A credential-provider plugin that the controller runs.
    Plugin,
}

/// Reads [`DeployedCredential`] from the controller container's arguments.
pub fn deployed_credential(deployment: &Deployment) -> DeployedCredential {
    if crate::manifests::controller_arg(deployment, CREDENTIAL_PROVIDER_CONFIG_ARG).is_some() {
        return DeployedCredential::Plugin;
    }
    match crate::manifests::registry_secret_in(deployment) {
        Some(name) => DeployedCredential::External(name),
        None => DeployedCredential::Own,
    }
}

/// Why no switch patch can be made for a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchPatchError {
    /// It has no container named `sparrow-controller`: not a Deployment Sparrow rendered.
    #[error(
        "the controller Deployment has no container {CONTROLLER_NAME}: run `sparrowctl deploy`"
    )]
    NoController,
    /// It carries no resourceVersion to guard the patch with (it was not read from the API).
    #[error("the controller Deployment has no resourceVersion")]
    NoResourceVersion,
}

/// The controller's arguments with `--registry-secret=NAME` set to `registry_secret`: replaced,
/// added where [`crate::manifests::controller_args`] renders it (so a later `deploy` renders
/// the same list and rolls nothing out), or removed (`None`). Every other argument is kept.
pub fn switched_args(args: &[String], registry_secret: Option<&str>) -> Vec<String> {
    let prefix = format!("{REGISTRY_SECRET_ARG}=");
    let mut kept: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with(&prefix))
        .cloned()
        .collect();
    if let Some(name) = registry_secret {
        // controller_args renders it after the webhook's flags, before these.
        let after = [
            "--credential-provider-",
            "--disable-auto-inject",
            "--enabled-namespaces=",
        ];
        let at = kept
            .iter()
            .position(|a| after.iter().any(|p| a.starts_with(p)))
            .unwrap_or(kept.len());
        kept.insert(at, format!("{prefix}{name}"));
    }
    kept
}

/// The JSON Patch (RFC 6902) switching the controller Deployment to copy and pull with
/// `registry_secret` (a Secret another tool keeps), or with Sparrow's own Secret (`None`):
/// its container arguments and `imagePullSecrets`, nothing else. It first tests the
/// Deployment's resourceVersion, so a Deployment changed since it was read is left alone.
pub fn pull_secret_switch_patch(
    deployment: &Deployment,
    registry_secret: Option<&str>,
) -> Result<Value, SwitchPatchError> {
    let version = deployment
        .metadata
        .resource_version
        .as_deref()
        .ok_or(SwitchPatchError::NoResourceVersion)?;
    let (index, container) =
        crate::manifests::controller_container(deployment).ok_or(SwitchPatchError::NoController)?;
    let args = switched_args(
        container.args.as_deref().unwrap_or_default(),
        registry_secret,
    );
    let pull_with = registry_secret.unwrap_or(PULL_SECRET_NAME);
    Ok(json!([
        { "op": "test", "path": "/metadata/resourceVersion", "value": version },
        { "op": "test", "path": format!("/spec/template/spec/containers/{index}/name"), "value": CONTROLLER_NAME },
        { "op": "add", "path": format!("/spec/template/spec/containers/{index}/args"), "value": args },
        { "op": "add", "path": "/spec/template/spec/imagePullSecrets", "value": [{ "name": pull_with }] },
    ]))
}

/// The registry (`HOST[:PORT]`) an image reference names, when it names one (`HOST.DOMAIN/…`,
/// `HOST:PORT/…`, `localhost/…`): where a mesh deployed without credentials of its own
/// pulls from. `None` for a Docker Hub short name.
pub fn registry_of_image(image: &str) -> Option<RegistryServer> {
    let (first, _) = image.split_once('/')?;
    let is_host = first.contains(['.', ':']) || first == "localhost";
    is_host.then(|| RegistryServer::parse(first).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::RegistryAuth;
    use crate::config::{ImageOverrides, Images, InjectionScope, MeshConfig, PullPolicy};
    use crate::manifests::{ControlPlane, Object};

    fn config(registry_secret: Option<&str>, injection: InjectionScope) -> MeshConfig {
        let registry = RegistryServer::parse("registry.example.com:5000/mesh").expect("valid");
        let images = Images::resolve(&registry, "1.2.3", &ImageOverrides::default());
        MeshConfig {
            namespace: "sparrow-mesh".to_owned(),
            registry,
            auth: registry_secret
                .is_none()
                .then(|| RegistryAuth::user_password("robot", "s3cret").expect("valid")),
            credential_expiry: None,
            stored_pull_secret: false,
            registry_secret: registry_secret.map(str::to_owned),
            credential_plugin: None,
            images,
            pull_policy: PullPolicy::IfNotPresent,
            injection,
            webhook_cert_validity: None,
            webhook_client_ca: None,
        }
    }

    fn deployment(config: &MeshConfig) -> Deployment {
        let plane = ControlPlane::render(config);
        let mut found = plane
            .objects
            .iter()
            .find_map(|o| match o {
                Object::Deployment(d) => Some(d.clone()),
                _ => None,
            })
            .expect("a Deployment");
        found.metadata.resource_version = Some("42".to_owned());
        found
    }

    fn patched(deployment: &Deployment, registry_secret: Option<&str>) -> Deployment {
        let ops = pull_secret_switch_patch(deployment, registry_secret).expect("patch");
        let mut value = serde_json::to_value(deployment).expect("json");
        let ops: json_patch::Patch = serde_json::from_value(ops).expect("ops");
        json_patch::patch(&mut value, &ops).expect("applies");
        serde_json::from_value(value).expect("a Deployment")
    }

    #[test]
    fn switching_a_rendered_deployment_gives_what_deploy_renders_for_the_other_kind() {
        let injections = [
            InjectionScope::default(),
            InjectionScope {
                disable_auto_inject: true,
                enabled_namespaces: vec!["a".to_owned(), "b".to_owned()],
            },
        ];
        for injection in injections {
            let own = deployment(&config(None, injection.clone()));
            let ecr = deployment(&config(Some("ecr-pull"), injection.clone()));
            let vault = deployment(&config(Some("vault-pull"), injection.clone()));
            for (from, to, name) in [
                (&own, &ecr, Some("ecr-pull")),
                (&ecr, &own, None),
                (&ecr, &vault, Some("vault-pull")),
                (&own, &own, None),
            ] {
                let mut switched = patched(from, name);
                switched.metadata.resource_version = to.metadata.resource_version.clone();
                assert_eq!(
                    &switched,
                    to,
                    "{injection:?} from {:?} to {name:?}",
                    deployed_credential(from)
                );
            }
        }
    }

    #[test]
    fn the_patch_tests_the_resource_version_first_and_touches_only_args_and_pull_secrets() {
        let own = deployment(&config(None, InjectionScope::default()));
        let ops = pull_secret_switch_patch(&own, Some("ecr-pull")).expect("patch");
        let ops = ops.as_array().expect("array");
        assert_eq!(
            ops[0],
            json!({ "op": "test", "path": "/metadata/resourceVersion", "value": "42" })
        );
        let paths: Vec<&str> = ops.iter().filter_map(|o| o["path"].as_str()).collect();
        assert_eq!(
            paths,
            [
                "/metadata/resourceVersion",
                "/spec/template/spec/containers/0/name",
                "/spec/template/spec/containers/0/args",
                "/spec/template/spec/imagePullSecrets",
            ]
        );
        assert_eq!(ops[3]["value"], json!([{ "name": "ecr-pull" }]));
        let ops = pull_secret_switch_patch(&own, None).expect("patch");
        assert_eq!(ops[3]["value"], json!([{ "name": PULL_SECRET_NAME }]));

        // Changed since it was read: the patch applies to nothing.
        let ops: json_patch::Patch =
            serde_json::from_value(pull_secret_switch_patch(&own, None).expect("patch"))
                .expect("ops");
        let mut changed = own.clone();
        changed.metadata.resource_version = Some("43".to_owned());
        let before = serde_json::to_value(&changed).expect("json");
        let mut after = before.clone();
        assert!(json_patch::patch(&mut after, &ops).is_err());
        assert_eq!(before, after);
    }

    #[test]
    fn a_deployment_that_is_not_ours_gets_no_patch() {
        let mut unread = deployment(&config(None, InjectionScope::default()));
        unread.metadata.resource_version = None;
        assert_eq!(
            pull_secret_switch_patch(&unread, None),
            Err(SwitchPatchError::NoResourceVersion)
        );
        let mut renamed = deployment(&config(None, InjectionScope::default()));
        if let Some(spec) = renamed.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
            spec.containers[0].name = "other".to_owned();
        }
        assert_eq!(
            pull_secret_switch_patch(&renamed, None),
            Err(SwitchPatchError::NoController)
        );
        assert_eq!(deployed_credential(&renamed), DeployedCredential::Own);
    }

    #[test]
    fn the_deployed_credential_is_read_from_the_controller_args() {
        let args = |extra: &[&str]| {
            let mut d = deployment(&config(None, InjectionScope::default()));
            if let Some(spec) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
                let args = spec.containers[0].args.get_or_insert_with(Vec::new);
                args.extend(extra.iter().map(|a| (*a).to_owned()));
            }
            deployed_credential(&d)
        };
        assert_eq!(args(&[]), DeployedCredential::Own);
        assert_eq!(
            args(&["--registry-secret=ecr-pull"]),
            DeployedCredential::External("ecr-pull".to_owned())
        );
        assert_eq!(
            args(&["--credential-provider-config=/etc/x/config.yaml"]),
            DeployedCredential::Plugin
        );
        // A flag that merely starts alike is not the plugin's.
        assert_eq!(
            args(&["--credential-provider-configured"]),
            DeployedCredential::Own
        );
    }

    #[test]
    fn switched_args_replace_add_and_remove_only_the_registry_secret() {
        let base: Vec<String> = ["--addr=x", "--disable-auto-inject"]
            .map(str::to_owned)
            .to_vec();
        let with = switched_args(&base, Some("a"));
        assert_eq!(
            with,
            ["--addr=x", "--registry-secret=a", "--disable-auto-inject"]
        );
        assert_eq!(
            switched_args(&with, Some("b")),
            ["--addr=x", "--registry-secret=b", "--disable-auto-inject"]
        );
        assert_eq!(switched_args(&with, None), base);
        assert_eq!(
            switched_args(&["--addr=x".to_owned()], Some("a")),
            ["--addr=x", "--registry-secret=a"]
        );
    }

    #[test]
    fn the_registry_of_an_image_is_its_host_when_it_names_one() {
        let key = |image: &str| registry_of_image(image).map(|r| r.auth_key());
        assert_eq!(
            key("127.0.0.1:5000/team/mesh/sparrow-controller:1.0").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(
            key("ghcr.io/sparrow-mesh/sparrow-controller@sha256:ab").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(
            key("localhost/sparrow-controller").as_deref(),
            Some("localhost")
        );
        assert_eq!(key("library/nginx:1"), None);
        assert_eq!(key("nginx"), None);
    }
}
