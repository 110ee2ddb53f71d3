//! The JSON Patch that injects a pod. Every operation adds only what is missing, so the patch
//! of an injected pod is empty and injecting twice equals injecting once.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};
use sparrow_core::names::{
    INIT_CONTAINER, INJECT_STATUS_ANNOTATION, INJECT_STATUS_INJECTED, PROXY_CONTAINER,
    PULL_SECRET_NAME,
};

use crate::containers::{init_container, proxy_container};
use crate::ports::{
    SKIP_INBOUND_PORTS_ANNOTATION, SKIP_OUTBOUND_PORTS_ANNOTATION, annotated_ranges,
};
use crate::{InjectConfig, InjectError, SidecarKind};

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, InjectError> {
    serde_json::to_value(value).map_err(InjectError::Json)
}

fn has_container(list: &[Container], name: &str) -> bool {
    list.iter().any(|c| c.name == name)
}

/// A container as a JSON value and already serialized (the webhook writes the latter).
#[derive(Debug, Clone)]
struct Prepared {
    value: Value,
    json: String,
}

impl Prepared {
    fn new(container: &Container) -> Result<Self, InjectError> {
        let value = to_json(container)?;
        let json = serde_json::to_string(&value).map_err(InjectError::Json)?;
        Ok(Self { value, json })
    }
}

/// The value of one `add`.
enum Piece<'a> {
    /// A prepared container.
    One(&'a Prepared),
    /// A list of pieces.
    List(Vec<Piece<'a>>),
    /// Anything else.
    Owned(Value),
}

impl Piece<'_> {
    fn into_value(self) -> Value {
        match self {
            Self::One(p) => p.value.clone(),
            Self::List(items) => Value::Array(items.into_iter().map(Piece::into_value).collect()),
            Self::Owned(v) => v,
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), InjectError> {
        match self {
            Self::One(p) => out.extend_from_slice(p.json.as_bytes()),
            Self::List(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out)?;
                }
                out.push(b']');
            }
            Self::Owned(v) => serde_json::to_writer(&mut *out, v).map_err(InjectError::Json)?,
        }
        Ok(())
    }
}

/// Injection with a fixed configuration: the containers are built and serialized once, not
/// per pod (the webhook's hot path). [`patch`] is the one-off form.
#[derive(Debug, Clone)]
pub struct Injector {
    config: InjectConfig,
    proxy: Prepared,
    /// The init container for pods without skip-port annotations (most of them).
    default_init: Prepared,
}

impl Injector {
    /// Prepares the containers of `config`.
    pub fn new(config: InjectConfig) -> Result<Self, InjectError> {
        let proxy = Prepared::new(&proxy_container(&config))?;
        let default_init = Prepared::new(&init_container(&config, &[], &[]))?;
        Ok(Self {
            config,
            proxy,
            default_init,
        })
    }

    /// The configuration injected with.
    pub fn config(&self) -> &InjectConfig {
        &self.config
    }

    /// The patch that gives `pod` the sidecar: the `sparrow-init` init container (appended:
    /// the user's init containers run before the redirect exists), the `sparrow-proxy`
    /// container, `sparrow-registry-key` in `imagePullSecrets` (list created when absent,
    /// never twice, the user's entries and those the ServiceAccount admission plugin added
    /// kept), and the `injector.sparrow-mesh.io/status: injected` annotation.
    ///
    /// It does not decide: call [`crate::decide`] first. It fails only on an invalid
    /// `config.sparrow-mesh.io/skip-*-ports` annotation.
    pub fn patch(&self, pod: &Pod) -> Result<Patch, InjectError> {
        let ops = self
            .plan(pod)?
            .into_iter()
            .map(|(path, piece)| {
                PatchOperation::Add(AddOperation {
                    path,
                    value: piece.into_value(),
                })
            })
            .collect();
        Ok(Patch(ops))
    }

    /// [`Injector::patch`] serialized as JSON, written without building it as values first.
    pub fn patch_json(&self, pod: &Pod) -> Result<Vec<u8>, InjectError> {
        let plan = self.plan(pod)?;
        let mut out =
            Vec::with_capacity(256 + self.proxy.json.len() + self.default_init.json.len());
        out.push(b'[');
        for (i, (path, piece)) in plan.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"op":"add","path":"#);
            serde_json::to_writer(&mut out, path.as_str()).map_err(InjectError::Json)?;
            out.extend_from_slice(br#","value":"#);
            piece.write_json(&mut out)?;
            out.push(b'}');
        }
        out.push(b']');
        Ok(out)
    }

    fn plan(&self, pod: &Pod) -> Result<Vec<(PointerBuf, Piece<'_>)>, InjectError> {
        let annotations = pod.metadata.annotations.as_ref();
        let skip_inbound = annotated_ranges(annotations, SKIP_INBOUND_PORTS_ANNOTATION)?;
        let skip_outbound = annotated_ranges(annotations, SKIP_OUTBOUND_PORTS_ANNOTATION)?;
        let custom_init = if skip_inbound.is_empty() && skip_outbound.is_empty() {
            None
        } else {
            Some(to_json(&init_container(
                &self.config,
                &skip_inbound,
                &skip_outbound,
            ))?)
        };
        let pull_secret = || json!({ "name": PULL_SECRET_NAME });
        let init = || match custom_init {
            Some(init) => Piece::Owned(init),
            None => Piece::One(&self.default_init),
        };
        let native = self.config.sidecar == SidecarKind::Native;

        let mut ops = Vec::with_capacity(5);
        match &pod.spec {
            None => {
                let mut spec = json!({ "imagePullSecrets": [pull_secret()] });
                let (inits, containers) = if native {
                    (vec![init(), Piece::One(&self.proxy)], vec![])
                } else {
                    (vec![init()], vec![Piece::One(&self.proxy)])
                };
                spec["initContainers"] = Piece::List(inits).into_value();
                spec["containers"] = Piece::List(containers).into_value();
                ops.push(at(&["spec"], Piece::Owned(spec)));
            }
            Some(spec) => {
                let init_list = spec.init_containers.as_deref().unwrap_or_default();
                let has_proxy = has_container(init_list, PROXY_CONTAINER)
                    || has_container(&spec.containers, PROXY_CONTAINER);
                // Appended: the user's init containers run before the redirect exists, and
                // a native proxy right after the redirect it serves.
                let mut new_inits = Vec::with_capacity(2);
                if !has_container(init_list, INIT_CONTAINER) {
                    new_inits.push(init());
                }
                if native && !has_proxy {
                    new_inits.push(Piece::One(&self.proxy));
                }
                if spec.init_containers.is_none() {
                    if !new_inits.is_empty() {
                        ops.push(at(&["spec", "initContainers"], Piece::List(new_inits)));
                    }
                } else {
                    for piece in new_inits {
                        ops.push(at(&["spec", "initContainers", "-"], piece));
                    }
                }
                if !native && !has_proxy {
                    ops.push(at(&["spec", "containers", "-"], Piece::One(&self.proxy)));
                }
                match spec.image_pull_secrets.as_deref() {
                    None => ops.push(at(
                        &["spec", "imagePullSecrets"],
                        Piece::Owned(json!([pull_secret()])),
                    )),
                    Some(list) if !list.iter().any(|r| r.name == PULL_SECRET_NAME) => {
                        ops.push(at(
                            &["spec", "imagePullSecrets", "-"],
                            Piece::Owned(pull_secret()),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        match annotations {
            None => ops.push(at(
                &["metadata", "annotations"],
                Piece::Owned(json!({ INJECT_STATUS_ANNOTATION: INJECT_STATUS_INJECTED })),
            )),
            Some(map)
                if map.get(INJECT_STATUS_ANNOTATION).map(String::as_str)
                    != Some(INJECT_STATUS_INJECTED) =>
            {
                ops.push(at(
                    &["metadata", "annotations", INJECT_STATUS_ANNOTATION],
                    Piece::Owned(json!(INJECT_STATUS_INJECTED)),
                ));
            }
            Some(_) => {}
        }
        Ok(ops)
    }
}

/// The path made of `tokens`, each escaped (`~` -> `~0`, `/` -> `~1`), with its value.
fn at<'a>(tokens: &[&str], piece: Piece<'a>) -> (PointerBuf, Piece<'a>) {
    (PointerBuf::from_tokens(tokens.iter().copied()), piece)
}

/// The patch that gives `pod` the sidecar (see [`Injector::patch`]); for many pods with one
/// configuration, an [`Injector`] saves rebuilding the containers each time.
pub fn patch(pod: &Pod, config: &InjectConfig) -> Result<Patch, InjectError> {
    Injector::new(config.clone())?.patch(pod)
}

/// `pod` with [`patch`] applied (for `sparrowctl inject`; does not decide either).
pub fn inject_pod(pod: &Pod, config: &InjectConfig) -> Result<Pod, InjectError> {
    let ops = patch(pod, config)?;
    let mut value = to_json(pod)?;
    json_patch::patch(&mut value, &ops).map_err(InjectError::Patch)?;
    serde_json::from_value(value).map_err(InjectError::Json)
}

#[cfg(test)]
mod tests;
