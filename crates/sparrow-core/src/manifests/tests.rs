use super::*;
use crate::auth::RegistryAuth;
use crate::config::{ImageOverrides, Images, InjectionScope, PullPolicy};
use crate::registry::RegistryServer;

fn config(auth: Option<RegistryAuth>) -> MeshConfig {
    let registry = RegistryServer::parse("registry.example.com:5000/mesh").expect("valid");
    let images = Images::resolve(&registry, "1.2.3", &ImageOverrides::default());
    MeshConfig {
        namespace: "sparrow-mesh".to_owned(),
        registry,
        auth,
        credential_expiry: None,
        stored_pull_secret: false,
        registry_secret: None,
        credential_plugin: None,
        images,
        pull_policy: PullPolicy::IfNotPresent,
        injection: InjectionScope::default(),
        webhook_cert_validity: None,
        webhook_client_ca: None,
    }
}

fn robot() -> Option<RegistryAuth> {
    Some(RegistryAuth::user_password("robot", "s3cret").expect("valid"))
}

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "rendering differs from {}",
        path.display()
    );
}

#[test]
fn golden_yaml_with_credentials() {
    let plane = ControlPlane::render(&config(robot()));
    golden("deploy-credentials.yaml", &plane.to_yaml().expect("yaml"));
}

#[test]
fn golden_yaml_without_credentials_disable_auto_inject() {
    let mut config = config(None);
    config.injection = InjectionScope {
        disable_auto_inject: true,
        enabled_namespaces: vec!["shop".to_owned(), "payments".to_owned()],
    };
    config.pull_policy = PullPolicy::Always;
    let plane = ControlPlane::render(&config);
    golden(
        "deploy-no-credentials.yaml",
        &plane.to_yaml().expect("yaml"),
    );
}

#[test]
fn the_source_pull_secret_records_a_known_expiry_and_nothing_otherwise() {
    let annotations_of = |config: &MeshConfig| {
        ControlPlane::render(config)
            .objects
            .iter()
            .find_map(|o| match o {
                Object::Secret(s) if s.metadata.name.as_deref() == Some(PULL_SECRET_NAME) => {
                    Some(s.metadata.annotations.clone())
                }
                _ => None,
            })
            .expect("a pull secret")
    };
    let mut expiring = config(robot());
    expiring.credential_expiry = Some(crate::CredentialExpiry {
        at: 1_803_859_200,
        source: crate::ExpirySource::Flag,
    });
    assert_eq!(
        annotations_of(&expiring),
        Some(BTreeMap::from([
            (
                CREDENTIAL_EXPIRES_ANNOTATION.to_owned(),
                "2027-03-01T00:00:00Z".to_owned()
            ),
            (
                CREDENTIAL_EXPIRES_SOURCE_ANNOTATION.to_owned(),
                "flag".to_owned()
            ),
            (CREDENTIAL_KIND_ANNOTATION.to_owned(), "static".to_owned()),
        ]))
    );
    assert_eq!(
        annotations_of(&config(robot())),
        Some(BTreeMap::from([(
            CREDENTIAL_KIND_ANNOTATION.to_owned(),
            "static".to_owned()
        )]))
    );
}

fn plugin() -> crate::config::CredentialPlugin {
    crate::config::CredentialPlugin {
        config:
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n"
                .to_owned(),
        provider: "ecr-credential-provider".to_owned(),
        image: "registry.example.com:5000/mesh/credential-providers:1".to_owned(),
    }
}

#[test]
fn a_credential_plugin_runs_in_the_controller_from_its_image_with_its_config() {
    let mut with = config(robot());
    with.credential_plugin = Some(plugin());
    let plane = ControlPlane::render(&with);
    let secret = plane
        .objects
        .iter()
        .find_map(|o| match o {
            Object::Secret(s)
                if s.metadata.name.as_deref() == Some(CREDENTIAL_PROVIDER_SECRET_NAME) =>
            {
                Some(s.clone())
            }
            _ => None,
        })
        .expect("the config Secret");
    assert_eq!(
        secret.data.expect("data")[CREDENTIAL_PROVIDER_CONFIG_KEY].0,
        plugin().config.into_bytes()
    );
    let source_kind = plane.objects.iter().find_map(|o| match o {
        Object::Secret(s) if s.metadata.name.as_deref() == Some(PULL_SECRET_NAME) => s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CREDENTIAL_KIND_ANNOTATION).cloned()),
        _ => None,
    });
    assert_eq!(source_kind.as_deref(), Some("plugin"));
    let pod = pod_spec(&plane).expect("pod");
    let init = &pod.init_containers.as_ref().expect("init containers")[0];
    assert_eq!(init.image.as_deref(), Some(plugin().image.as_str()));
    assert_eq!(
        init.command.as_deref().expect("command"),
        [
            "cp",
            "-R",
            "/credential-providers/.",
            "/var/lib/sparrow/credential-providers/"
        ]
    );
    assert_eq!(
        pod.image_pull_secrets.expect("pull secrets")[0].name,
        PULL_SECRET_NAME
    );
    let controller = &pod.containers[0];
    let args = controller.args.clone().expect("args");
    for arg in [
        "--credential-provider-config=/etc/sparrow/credential-provider/config.yaml",
        "--credential-provider-bin-dir=/var/lib/sparrow/credential-providers",
        "--credential-provider=ecr-credential-provider",
        "--registry-server=registry.example.com:5000/mesh",
    ] {
        assert!(args.contains(&arg.to_owned()), "{arg} in {args:?}");
    }
    let mounts: Vec<(String, bool)> = controller
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.read_only == Some(true)))
        .collect();
    assert!(mounts.contains(&("/var/lib/sparrow/credential-providers".to_owned(), true)));
    assert!(mounts.contains(&("/etc/sparrow/credential-provider".to_owned(), true)));
    // Nothing of it without the flag.
    let without = ControlPlane::render(&config(robot()));
    assert!(pod_spec(&without).expect("pod").init_containers.is_none());
    assert!(
        !kinds(&without)
            .iter()
            .any(|k| k.contains(CREDENTIAL_PROVIDER_SECRET_NAME))
    );
}

fn kinds(plane: &ControlPlane) -> Vec<String> {
    plane.objects.iter().map(|o| o.describe()).collect()
}

fn pod_spec(plane: &ControlPlane) -> Option<k8s_openapi::api::core::v1::PodSpec> {
    plane.objects.iter().find_map(|o| match o {
        Object::Deployment(d) => d.spec.as_ref()?.template.spec.clone(),
        _ => None,
    })
}

#[test]
fn apply_order_and_pull_secret_only_with_credentials() {
    let with = ControlPlane::render(&config(robot()));
    assert_eq!(
        kinds(&with),
        [
            "Namespace sparrow-mesh",
            "Secret sparrow-mesh/sparrow-registry-key",
            "ServiceAccount sparrow-mesh/sparrow-controller",
            "ClusterRole sparrow-controller",
            "ClusterRoleBinding sparrow-controller",
            "Role sparrow-mesh/sparrow-controller",
            "RoleBinding sparrow-mesh/sparrow-controller",
            "Deployment sparrow-mesh/sparrow-controller",
            "Service sparrow-mesh/sparrow-controller",
            "MutatingWebhookConfiguration sparrow-sidecar-injector",
        ]
    );
    let without = ControlPlane::render(&config(None));
    assert!(
        !kinds(&without)
            .iter()
            .any(|k| k.contains("sparrow-registry-key"))
    );
    let secrets = pod_spec(&with)
        .and_then(|s| s.image_pull_secrets)
        .expect("imagePullSecrets");
    assert_eq!(secrets[0].name, "sparrow-registry-key");
    assert_eq!(pod_spec(&without).and_then(|s| s.image_pull_secrets), None);
    // Deployed again without credential flags over a stored pull secret: the controller
    // keeps pulling with it, and the Secret is not rendered (so not overwritten).
    let stored = ControlPlane::render(&MeshConfig {
        stored_pull_secret: true,
        ..config(None)
    });
    assert!(
        !kinds(&stored)
            .iter()
            .any(|k| k.contains("sparrow-registry-key"))
    );
    let kept = pod_spec(&stored)
        .and_then(|s| s.image_pull_secrets)
        .expect("imagePullSecrets kept");
    assert_eq!(kept[0].name, "sparrow-registry-key");
}

#[test]
fn a_secret_kept_by_another_tool_is_pulled_with_read_by_name_and_never_rendered() {
    let plane = ControlPlane::render(&MeshConfig {
        registry_secret: Some("ecr-pull".to_owned()),
        ..config(None)
    });
    assert!(!kinds(&plane).iter().any(|k| k.starts_with("Secret")));
    let pulls = pod_spec(&plane)
        .and_then(|s| s.image_pull_secrets)
        .expect("imagePullSecrets");
    assert_eq!(pulls[0].name, "ecr-pull");
    let args = controller_args(&MeshConfig {
        registry_secret: Some("ecr-pull".to_owned()),
        ..config(None)
    });
    assert!(args.contains(&"--registry-secret=ecr-pull".to_owned()));
    let role = plane
        .objects
        .iter()
        .find_map(|o| match o {
            Object::Role(role) => Some(role.clone()),
            _ => None,
        })
        .expect("Role");
    let reads: Vec<_> = role
        .rules
        .expect("rules")
        .into_iter()
        .filter(|r| r.resource_names.as_deref() == Some(&["ecr-pull".to_owned()]))
        .collect();
    assert_eq!(reads.len(), 1, "one rule names the external Secret");
    assert_eq!(reads[0].verbs, ["get", "list", "watch"], "read only");
    // Without the flag nothing names it.
    assert!(
        !controller_args(&config(robot()))
            .iter()
            .any(|a| a.contains("--registry-secret"))
    );
}

#[test]
fn every_object_carries_our_labels_and_the_pull_secret_its_usage() {
    let plane = ControlPlane::render(&config(robot()));
    for object in &plane.objects {
        let labels = object.meta().labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("app.kubernetes.io/part-of").map(String::as_str),
            Some("sparrow-mesh"),
            "{}",
            object.describe()
        );
        assert_eq!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("sparrowctl"),
            "{}",
            object.describe()
        );
        let is_pull_secret = object.name() == "sparrow-registry-key";
        assert_eq!(
            labels.get("usage").map(String::as_str) == Some("sparrow-registry-key"),
            is_pull_secret,
            "{}",
            object.describe()
        );
    }
    let Object::Secret(secret) = &plane.objects[1] else {
        panic!("pull secret second")
    };
    assert_eq!(
        secret.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let data = secret.data.as_ref().expect("data");
    assert_eq!(
        data[".dockerconfigjson"].0,
        br#"{"auths":{"registry.example.com:5000":{"username":"robot","password":"s3cret","auth":"cm9ib3Q6czNjcmV0"}}}"#
    );
}

#[test]
fn images_come_from_the_registry_server_or_overrides() {
    let plane = ControlPlane::render(&config(robot()));
    let Some(Object::Deployment(deployment)) =
        plane.objects.iter().find(|o| o.kind() == Kind::Deployment)
    else {
        panic!("deployment")
    };
    let container = &deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("spec")
        .containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com:5000/mesh/sparrow-controller:1.2.3")
    );
    let args = container.args.clone().unwrap_or_default();
    assert!(args.contains(
        &"--sidecar-image=registry.example.com:5000/mesh/sparrow-proxy:1.2.3".to_owned()
    ));
    assert!(
        args.contains(&"--init-image=registry.example.com:5000/mesh/sparrow-init:1.2.3".to_owned())
    );

    let registry = RegistryServer::parse("r.example.com").expect("valid");
    let overrides = ImageOverrides {
        proxy: Some("mirror.example.com/proxy@sha256:00".to_owned()),
        ..ImageOverrides::default()
    };
    let images = Images::resolve(&registry, "9", &overrides);
    assert_eq!(images.controller, "r.example.com/sparrow-controller:9");
    assert_eq!(images.proxy, "mirror.example.com/proxy@sha256:00");
    assert_eq!(images.init, "r.example.com/sparrow-init:9");
}

#[test]
fn rbac_can_never_read_another_secret() {
    let role = cluster_role("sparrow-mesh");
    for rule in role.rules.expect("rules") {
        if rule.resources.as_deref() != Some(&["secrets".to_owned()]) {
            continue;
        }
        let names = rule.resource_names.clone().unwrap_or_default();
        if rule.verbs == ["create"] {
            continue; // create cannot be restricted by name, and returns only what was sent
        }
        assert_eq!(
            names,
            ["sparrow-registry-key"],
            "verbs {:?} must be limited by resourceNames",
            rule.verbs
        );
    }
}

/// Which webhooks select a namespace with `ns_label` and a pod with `pod_label`.
fn matching(
    config: &MeshConfig,
    ns: &str,
    ns_label: Option<&str>,
    pod_label: Option<&str>,
) -> Vec<String> {
    let matches = crate::selector::selector_matches;
    let mut ns_labels = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]);
    if let Some(v) = ns_label {
        ns_labels.insert(AUTO_INJECT_LABEL.to_owned(), v.to_owned());
    }
    let pod_labels: BTreeMap<_, _> = pod_label
        .map(|v| (AUTO_INJECT_LABEL.to_owned(), v.to_owned()))
        .into_iter()
        .collect();
    injector_webhooks(config, Some("ca"))
        .into_iter()
        .filter(|w| {
            matches(
                w.namespace_selector.as_ref().expect("ns selector"),
                &ns_labels,
            ) && matches(
                w.object_selector.as_ref().expect("object selector"),
                &pod_labels,
            )
        })
        .map(|w| w.name)
        .collect()
}

#[test]
fn webhook_selectors_call_once_exactly_for_pods_to_inject() {
    let auto = config(None);
    let mut opt_in = config(None);
    opt_in.injection = InjectionScope {
        disable_auto_inject: true,
        enabled_namespaces: vec!["listed".to_owned()],
    };
    let labels = [None, Some("enabled"), Some("disabled")];
    for (config, mode) in [(&auto, "auto"), (&opt_in, "opt-in")] {
        for ns in ["shop", "listed", "kube-system", "sparrow-mesh"] {
            for ns_label in labels {
                for pod_label in labels {
                    let system = ns == "kube-system" || ns == "sparrow-mesh";
                    let ns_on = if config.injection.disable_auto_inject {
                        ns_label == Some("enabled")
                            || config.injection.enabled_namespaces.iter().any(|n| n == ns)
                    } else {
                        ns_label != Some("disabled")
                    };
                    let want = !system
                        && match pod_label {
                            Some("enabled") => true,
                            Some("disabled") => false,
                            _ => ns_on,
                        };
                    let got = matching(config, ns, ns_label, pod_label);
                    assert_eq!(
                        got.len(),
                        usize::from(want),
                        "{mode} ns={ns} {ns_label:?} pod={pod_label:?}: {got:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn webhook_settings() {
    let plane = ControlPlane::render(&config(None));
    let Some(Object::MutatingWebhookConfiguration(config)) = plane.objects.last() else {
        panic!("webhook last")
    };
    assert_eq!(
        config.metadata.name.as_deref(),
        Some("sparrow-sidecar-injector")
    );
    for hook in config.webhooks.as_ref().expect("webhooks") {
        assert_eq!(hook.side_effects, "NoneOnDryRun");
        // Only the implicit selector (namespaces nobody labelled) fails open.
        let want = if hook.name.starts_with("implicit.") {
            "Ignore"
        } else {
            "Fail"
        };
        assert_eq!(hook.failure_policy.as_deref(), Some(want), "{}", hook.name);
        assert_eq!(hook.timeout_seconds, Some(10));
        assert_eq!(hook.admission_review_versions, ["v1"]);
        // The controller fills caBundle in (its own field manager): deploy renders none.
        assert_eq!(hook.client_config.ca_bundle, None);
        let service = hook.client_config.service.as_ref().expect("service");
        assert_eq!(
            (
                service.name.as_str(),
                service.namespace.as_str(),
                service.path.as_deref(),
                service.port
            ),
            (
                "sparrow-controller",
                "sparrow-mesh",
                Some("/inject"),
                Some(443)
            )
        );
        let rule = &hook.rules.as_ref().expect("rules")[0];
        assert_eq!(rule.operations.as_deref(), Some(&["CREATE".to_owned()][..]));
        assert_eq!(rule.resources.as_deref(), Some(&["pods".to_owned()][..]));
    }
}

/// Every rendered object survives YAML and JSON and comes back as the same typed value.
#[test]
fn objects_round_trip_through_k8s_openapi() {
    fn check<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        original: &T,
        object: &Object,
    ) {
        let yaml = serde_saphyr::to_string(&object.to_json()).expect("yaml");
        let from_yaml: T =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{}: {e}", object.describe()));
        assert_eq!(&from_yaml, original, "{} via YAML", object.describe());
        let from_json: T = serde_json::from_value(object.to_json()).expect("json");
        assert_eq!(&from_json, original, "{} via JSON", object.describe());
    }
    let mut config = config(Some(
        RegistryAuth::json_key("{\"k\": \"v\\n\"}").expect("valid"),
    ));
    config.injection.disable_auto_inject = true;
    config.injection.enabled_namespaces = vec!["shop".to_owned()];
    config.webhook_client_ca = Some(crate::client_ca::test_ca("API server client CA"));
    for object in &ControlPlane::render(&config).objects {
        match object {
            Object::Namespace(o) => check(o, object),
            Object::Secret(o) => check(o, object),
            Object::ConfigMap(o) => check(o, object),
            Object::ServiceAccount(o) => check(o, object),
            Object::ClusterRole(o) => check(o, object),
            Object::ClusterRoleBinding(o) => check(o, object),
            Object::Role(o) => check(o, object),
            Object::RoleBinding(o) => check(o, object),
            Object::Deployment(o) => check(o, object),
            Object::Service(o) => check(o, object),
            Object::MutatingWebhookConfiguration(o) => check(o, object),
        }
        let json = object.to_json();
        assert!(
            json["apiVersion"].is_string()
                && json["kind"] == object.kind().name()
                && json["apiVersion"] == object.kind().api_version(),
            "{}",
            object.describe()
        );
    }
}

#[test]
fn json_list_holds_every_object_in_order() {
    let plane = ControlPlane::render(&config(robot()));
    let list = plane.to_json_list();
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), plane.objects.len());
    assert_eq!(items[0]["kind"], "Namespace");
    assert_eq!(
        items[items.len() - 1]["kind"],
        "MutatingWebhookConfiguration"
    );
}

/// Fail closed exactly where someone opted in: a namespace or pod labelled `enabled`, or a
/// namespace listed at deploy; everything else a down controller must never block.
#[test]
fn failure_policy_follows_explicit_opt_in() {
    let auto = config(None);
    let mut opt_in = config(None);
    opt_in.injection = InjectionScope {
        disable_auto_inject: true,
        enabled_namespaces: vec!["listed".to_owned()],
    };
    let labels = [None, Some("enabled"), Some("disabled"), Some("other")];
    for (config, mode) in [(&auto, "auto"), (&opt_in, "opt-in")] {
        for ns in ["shop", "listed"] {
            for ns_label in labels {
                for pod_label in labels {
                    let explicit = ns_label == Some("enabled")
                        || pod_label == Some("enabled")
                        || (config.injection.disable_auto_inject && ns == "listed");
                    let hooks = matching(config, ns, ns_label, pod_label);
                    let webhooks = injector_webhooks(config, Some("ca"));
                    for name in hooks {
                        let hook = webhooks.iter().find(|w| w.name == name).expect("hook");
                        let want = if explicit { "Fail" } else { "Ignore" };
                        assert_eq!(
                            hook.failure_policy.as_deref(),
                            Some(want),
                            "{mode} ns={ns} {ns_label:?} pod={pod_label:?}: {name}"
                        );
                    }
                }
            }
        }
    }
}

/// Render follows the one list of parts, in its order, and marks everything with the mesh.
#[test]
fn render_follows_the_parts_list_and_marks_the_mesh() {
    let mut config = config(robot());
    config.namespace = "team".to_owned();
    config.webhook_client_ca = Some(crate::client_ca::test_ca("API server client CA"));
    config.credential_plugin = Some(plugin());
    let plane = ControlPlane::render(&config);
    let rendered: Vec<String> = plane.objects.iter().map(Object::describe).collect();
    // All but what the controller makes (its certificates).
    let listed: Vec<String> = crate::PARTS
        .iter()
        .filter(|p| p.presence != Presence::MadeByController)
        .map(|p| p.describe("team"))
        .collect();
    assert_eq!(rendered, listed);
    for object in &plane.objects {
        assert_eq!(
            object
                .meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(MESH_LABEL)),
            Some(&"team".to_owned()),
            "{}",
            object.describe()
        );
    }
    let Some(Object::Deployment(deployment)) =
        plane.objects.iter().find(|o| o.kind() == Kind::Deployment)
    else {
        panic!("deployment")
    };
    let template_labels = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    assert_eq!(
        template_labels
            .and_then(|l| l.get(MESH_LABEL))
            .map(String::as_str),
        Some("team"),
        "the controller's pods are marked too"
    );
    let without = ControlPlane::render(&self::config(None));
    assert_eq!(
        without.objects.len(),
        crate::PARTS.len() - 5,
        "neither the pull secret, the plugin's config, the client CA nor the controller's two certificate Secrets"
    );
}

#[test]
fn the_probes_use_the_health_listener_not_the_webhook_port() {
    let plane = ControlPlane::render(&config(robot()));
    let Some(Object::Deployment(deployment)) =
        plane.objects.iter().find(|o| o.kind() == Kind::Deployment)
    else {
        panic!("deployment")
    };
    let container = &deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("spec")
        .containers[0];
    let args = container.args.clone().unwrap_or_default();
    assert!(args.contains(&format!("--health-addr=0.0.0.0:{HEALTH_PORT}")));
    assert_ne!(HEALTH_PORT, CONTAINER_PORT);
    let ports: Vec<_> = container
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        [
            (Some("https"), CONTAINER_PORT),
            (Some("health"), HEALTH_PORT)
        ]
    );
    for (probe, path) in [
        (&container.liveness_probe, "/healthz"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::Int(HEALTH_PORT));
        assert_eq!(get.scheme.as_deref(), Some("HTTP"));
    }
}

/// Deploy's rendering holds no certificate and no key (the controller makes them): the
/// output of `deploy --dry-run` can go to Git (the pull secret aside, when rendered).
#[test]
fn the_rendering_holds_no_private_key_and_no_certificate() {
    let yaml = ControlPlane::render(&config(None)).to_yaml().expect("yaml");
    assert!(!yaml.contains("PRIVATE KEY"), "{yaml}");
    assert!(!yaml.contains("CERTIFICATE"), "{yaml}");
    assert!(!yaml.contains("caBundle"), "{yaml}");
    assert!(!yaml.contains("volumes"), "{yaml}");
    let mut config = config(None);
    config.webhook_cert_validity = Some(std::time::Duration::from_secs(120));
    assert!(controller_args(&config).contains(&"--webhook-cert-validity=2m".to_owned()));
    config.webhook_cert_validity = Some(std::time::Duration::from_secs(90 * 86_400));
    assert!(controller_args(&config).contains(&"--webhook-cert-validity=90d".to_owned()));
}
