//! AdmissionReview bodies: each case is posted to `/inject` over TLS and its answer checked
//! (HTTP status, the AdmissionResponse, the message), then the cluster is checked for writes.

use serde_json::{Value, json};
use sparrow_core::names::{AUTO_INJECT_LABEL, INJECT_STATUS_ANNOTATION, PROXY_CONTAINER};

use crate::support::{Catalog, REVIEW, review_with};

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// HTTP 400, the text containing this.
    BadRequest(&'static str),
    /// 200, allowed, no patch (not a pod, not a CREATE, or skipped).
    Allowed,
    /// 200, allowed, with a JSON Patch; no warning.
    Injected,
    /// 200, allowed, with a JSON Patch and a warning containing this.
    InjectedWithWarning(&'static str),
    /// 200, not allowed, the status message containing this.
    Denied(&'static str),
}

pub struct Case {
    pub name: &'static str,
    pub body: Vec<u8>,
    pub expect: Expect,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        body: body.into(),
        expect,
    }
}

fn edit(name: &'static str, expect: Expect, edit: impl FnOnce(&mut Value)) -> Case {
    case(name, review_with(edit), expect)
}

fn in_namespace(namespace: &str) -> impl FnOnce(&mut Value) {
    let namespace = namespace.to_owned();
    move |r: &mut Value| {
        r["request"]["namespace"] = json!(namespace);
        r["request"]["object"]["metadata"]["namespace"] = json!(namespace);
    }
}

fn wrapped(request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request
    }))
    .expect("json")
}

const NOT_A_REVIEW: Expect = Expect::BadRequest("the body is not an AdmissionReview");
const WRONG_KIND: Expect = Expect::BadRequest("expected kind AdmissionReview");
const BAD_NAMESPACE: Expect = Expect::Denied("is not a valid namespace name");
const BAD_KIND: Expect = Expect::Denied("is not a Kubernetes kind");
const NOT_A_POD: Expect = Expect::Denied("the object is not a valid Pod");

fn malformed() -> Vec<Case> {
    let mut truncated = REVIEW.as_bytes().to_vec();
    truncated.truncate(REVIEW.len() / 2);
    let mut deep = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"shop","operation":"CREATE","object":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    vec![
        case("empty body", "", NOT_A_REVIEW),
        case("an open brace", "{", NOT_A_REVIEW),
        case("null", "null", NOT_A_REVIEW),
        case("an empty array", "[]", WRONG_KIND),
        case("a string", "\"review\"", NOT_A_REVIEW),
        case("a number", "42", NOT_A_REVIEW),
        case("half a review", truncated, NOT_A_REVIEW),
        case("invalid UTF-8", vec![0xff, 0xfe, b'{', b'}'], NOT_A_REVIEW),
        case("trailing garbage", format!("{REVIEW}x"), NOT_A_REVIEW),
        case(
            "a byte order mark",
            format!("\u{feff}{REVIEW}"),
            NOT_A_REVIEW,
        ),
        case("NaN", r#"{"apiVersion": NaN}"#, NOT_A_REVIEW),
        case(
            "a duplicate key",
            r#"{"kind":"AdmissionReview","kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#,
            NOT_A_REVIEW,
        ),
        case("100,000 nested arrays", deep, NOT_A_REVIEW),
    ]
}

fn envelope() -> Vec<Case> {
    vec![
        edit("apiVersion v1beta1", WRONG_KIND, |r| {
            r["apiVersion"] = json!("admission.k8s.io/v1beta1");
        }),
        edit("apiVersion v2", WRONG_KIND, |r| {
            r["apiVersion"] = json!("admission.k8s.io/v2")
        }),
        case(
            "a Pod, not a review",
            r#"{"apiVersion":"v1","kind":"Pod"}"#,
            WRONG_KIND,
        ),
        case("no apiVersion and no kind", "{}", WRONG_KIND),
        edit("kind in lower case", WRONG_KIND, |r| {
            r["kind"] = json!("admissionreview")
        }),
        edit("kind a number", NOT_A_REVIEW, |r| r["kind"] = json!(7)),
        edit("a kind of 1 MiB", WRONG_KIND, |r| {
            r["kind"] = json!("K".repeat(1 << 20))
        }),
        edit("no request", Expect::BadRequest("has no request"), |r| {
            r.as_object_mut().expect("object").remove("request");
        }),
        edit("request null", Expect::BadRequest("has no request"), |r| {
            r["request"] = Value::Null
        }),
        edit("request a string", NOT_A_REVIEW, |r| {
            r["request"] = json!("pod")
        }),
        edit(
            "a response instead of a request",
            Expect::BadRequest("has no request"),
            |r| {
                let request = r["request"].take();
                r.as_object_mut().expect("object").remove("request");
                r["response"] = request;
            },
        ),
        edit("no uid", Expect::BadRequest("has no uid"), |r| {
            r["request"].as_object_mut().expect("request").remove("uid");
        }),
        edit(
            "an empty uid",
            Expect::BadRequest("has an empty uid"),
            |r| r["request"]["uid"] = json!(""),
        ),
        edit("a numeric uid", NOT_A_REVIEW, |r| {
            r["request"]["uid"] = json!(7)
        }),
        edit(
            "a uid with a newline",
            Expect::BadRequest("is not a uid"),
            |r| {
                r["request"]["uid"] = json!("a\nb");
            },
        ),
        edit(
            "a uid of 10,000 characters",
            Expect::BadRequest("is not a uid"),
            |r| {
                r["request"]["uid"] = json!("u".repeat(10_000));
            },
        ),
        edit("a non-ASCII uid", Expect::BadRequest("is not a uid"), |r| {
            r["request"]["uid"] = json!("üid")
        }),
    ]
}

fn kinds_and_operations() -> Vec<Case> {
    let kind = |name, expect, gvk: Value| edit(name, expect, move |r| r["request"]["kind"] = gvk);
    let operation = |name, op: Value| {
        edit(name, Expect::Allowed, move |r| {
            r["request"]["operation"] = op
        })
    };
    vec![
        edit("no kind", Expect::Denied("the request has no kind"), |r| {
            r["request"]
                .as_object_mut()
                .expect("request")
                .remove("kind");
        }),
        kind("an empty kind", BAD_KIND, json!({})),
        kind(
            "kind Pod/status",
            BAD_KIND,
            json!({"group": "", "version": "v1", "kind": "Pod/status"}),
        ),
        kind(
            "version V1",
            BAD_KIND,
            json!({"group": "", "version": "V1", "kind": "Pod"}),
        ),
        kind(
            "group Apps",
            BAD_KIND,
            json!({"group": "Apps", "version": "v1", "kind": "Pod"}),
        ),
        kind("kind a string", NOT_A_REVIEW, json!("Pod")),
        kind(
            "a Deployment",
            Expect::Allowed,
            json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
        ),
        kind(
            "a Secret",
            Expect::Allowed,
            json!({"group": "", "version": "v1", "kind": "Secret"}),
        ),
        kind(
            "a ConfigMap",
            Expect::Allowed,
            json!({"group": "", "version": "v1", "kind": "ConfigMap"}),
        ),
        kind(
            "a Pod of group apps",
            Expect::Allowed,
            json!({"group": "apps", "version": "v1", "kind": "Pod"}),
        ),
        kind(
            "a Pod of version v2",
            Expect::Allowed,
            json!({"group": "", "version": "v2", "kind": "Pod"}),
        ),
        operation("UPDATE", json!("UPDATE")),
        operation("DELETE", json!("DELETE")),
        operation("CONNECT", json!("CONNECT")),
        operation("create in lower case", json!("create")),
        edit("no operation", Expect::Allowed, |r| {
            r["request"]
                .as_object_mut()
                .expect("request")
                .remove("operation");
        }),
    ]
}

fn namespaces_and_names() -> Vec<Case> {
    let namespace = |name, ns: &str| {
        let ns = ns.to_owned();
        edit(name, BAD_NAMESPACE, move |r| {
            r["request"]["namespace"] = json!(ns)
        })
    };
    let pod_name = |name, expect, value: &str| {
        let value = value.to_owned();
        edit(name, expect, move |r| {
            r["request"]["object"]["metadata"]["name"] = json!(value)
        })
    };
    vec![
        edit(
            "no namespace",
            Expect::Denied("the request has no namespace"),
            |r| {
                r["request"]
                    .as_object_mut()
                    .expect("request")
                    .remove("namespace");
            },
        ),
        edit(
            "an empty namespace",
            Expect::Denied("the request has no namespace"),
            |r| {
                r["request"]["namespace"] = json!("");
            },
        ),
        namespace("a namespace that is a URL path", "kube-system/secrets?x="),
        namespace("a namespace in upper case", "Shop"),
        namespace("a namespace of 64 characters", &"a".repeat(64)),
        namespace("a namespace with ..", "../default"),
        namespace("a percent-encoded namespace", "shop%2Fsecrets"),
        namespace("a namespace with a space", "shop "),
        namespace("a non-ASCII namespace", "shöp"),
        namespace("a namespace ending in -", "shop-"),
        edit(
            "namespaces that disagree",
            Expect::Denied("is not the request's namespace"),
            |r| {
                r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
            },
        ),
        edit("a numeric namespace", NOT_A_REVIEW, |r| {
            r["request"]["namespace"] = json!(5)
        }),
        pod_name(
            "a name with _ and upper case",
            Expect::Denied("is not a valid name"),
            "Web_1",
        ),
        pod_name(
            "a name of 300 characters",
            Expect::Denied("is not a valid name"),
            &"a".repeat(300),
        ),
        pod_name(
            "a name that is a path",
            Expect::Denied("is not a valid name"),
            "../../etc",
        ),
        edit(
            "a generateName in upper case",
            Expect::Denied("is not a valid name prefix"),
            |r| {
                r["request"]["object"]["metadata"]["generateName"] = json!("WEB-");
            },
        ),
        edit(
            "neither name nor generateName",
            Expect::Denied("neither a name nor a generateName"),
            |r| {
                r["request"]["object"]["metadata"]
                    .as_object_mut()
                    .expect("metadata")
                    .remove("generateName");
            },
        ),
    ]
}

fn objects() -> Vec<Case> {
    let object =
        |name, expect, value: Value| edit(name, expect, move |r| r["request"]["object"] = value);
    vec![
        edit(
            "no object",
            Expect::Denied("the request has no object"),
            |r| {
                r["request"]
                    .as_object_mut()
                    .expect("request")
                    .remove("object");
            },
        ),
        object(
            "object null",
            Expect::Denied("the request has no object"),
            Value::Null,
        ),
        object("object an array", NOT_A_POD, json!([1, 2])),
        object("object a string", NOT_A_POD, json!("pod")),
        edit("containers a string", NOT_A_POD, |r| {
            r["request"]["object"]["spec"]["containers"] = json!("web");
        }),
        edit("object of kind Secret", NOT_A_POD, |r| {
            r["request"]["object"]["kind"] = json!("Secret")
        }),
        edit("object of apiVersion v2", NOT_A_POD, |r| {
            r["request"]["object"]["apiVersion"] = json!("v2");
        }),
        object(
            "a pod without a spec",
            Expect::Denied("the Pod has no spec"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}}),
        ),
        edit(
            "a spec without containers",
            Expect::Denied("the Pod has no containers"),
            |r| {
                r["request"]["object"]["spec"]
                    .as_object_mut()
                    .expect("spec")
                    .remove("containers");
            },
        ),
        edit(
            "an empty container list",
            Expect::Denied("the Pod has no containers"),
            |r| {
                r["request"]["object"]["spec"]["containers"] = json!([]);
            },
        ),
        edit(
            "null init containers and pull secrets",
            Expect::Injected,
            |r| {
                r["request"]["object"]["spec"]["initContainers"] = Value::Null;
                r["request"]["object"]["spec"]["imagePullSecrets"] = Value::Null;
            },
        ),
        edit(
            "a port annotation that is not ports",
            Expect::Denied("config.sparrow-mesh.io/skip-inbound-ports"),
            |r| {
                r["request"]["object"]["metadata"]["annotations"]["config.sparrow-mesh.io/skip-inbound-ports"] =
                    json!("http");
            },
        ),
        edit(
            "a port annotation of 2 MiB",
            Expect::Denied("config.sparrow-mesh.io/skip-outbound-ports"),
            |r| {
                r["request"]["object"]["metadata"]["annotations"]["config.sparrow-mesh.io/skip-outbound-ports"] =
                    json!("x".repeat(2 << 20));
            },
        ),
        edit("a label value of 1 MiB", Expect::Injected, |r| {
            r["request"]["object"]["metadata"]["labels"]["big"] = json!("v".repeat(1 << 20));
        }),
        edit("a pod label with an odd value", Expect::Injected, |r| {
            r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("maybe");
        }),
        edit("a dryRun that is not a boolean", NOT_A_REVIEW, |r| {
            r["request"]["dryRun"] = json!("yes")
        }),
    ]
}

/// Pods whose answer is not the question: what side effects the review may cause. `fresh` is
/// meshed and holds no copy yet, so any copy would be a write.
fn side_effects() -> Vec<Case> {
    let annotated_injected = |r: &mut Value| {
        r["request"]["object"]["metadata"]["annotations"][INJECT_STATUS_ANNOTATION] =
            json!("injected");
    };
    vec![
        edit("a dry run in a meshed namespace", Expect::Injected, |r| {
            in_namespace("fresh")(r);
            r["request"]["dryRun"] = json!(true);
        }),
        edit(
            "annotated injected, namespace disabled",
            Expect::Allowed,
            |r| {
                in_namespace("legacy")(r);
                annotated_injected(r);
            },
        ),
        edit(
            "annotated injected, meshed namespace",
            Expect::Allowed,
            |r| {
                in_namespace("fresh")(r);
                annotated_injected(r);
            },
        ),
        edit("a sidecar already there", Expect::Allowed, |r| {
            in_namespace("fresh")(r);
            r["request"]["object"]["spec"]["containers"][0]["name"] = json!(PROXY_CONTAINER);
        }),
        edit(
            "a pod opting in within a disabled namespace",
            Expect::InjectedWithWarning(
                "namespace legacy is not meshed, so the registry pull secret was not copied",
            ),
            |r| {
                in_namespace("legacy")(r);
                r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("enabled");
            },
        ),
        edit(
            "a namespace the cache does not know",
            Expect::InjectedWithWarning(
                "namespace ghost is not known to the controller yet; the registry pull secret will be copied there as soon as it is",
            ),
            in_namespace("ghost"),
        ),
        edit(
            "a pod in kube-system",
            Expect::Allowed,
            in_namespace("kube-system"),
        ),
        edit(
            "a pod in the mesh namespace",
            Expect::Allowed,
            in_namespace("sparrow-mesh"),
        ),
        edit("a hostNetwork pod", Expect::Allowed, |r| {
            in_namespace("fresh")(r);
            r["request"]["object"]["spec"]["hostNetwork"] = json!(true);
        }),
        edit("a pod opting out", Expect::Allowed, |r| {
            in_namespace("fresh")(r);
            r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("disabled");
        }),
        case(
            "a minimal pod in a disabled namespace",
            wrapped(json!({
                "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": "legacy", "operation": "CREATE",
                "object": {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
            })),
            Expect::Allowed,
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    [
        malformed(),
        envelope(),
        kinds_and_operations(),
        namespaces_and_names(),
        objects(),
        side_effects(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Checks one answer against its expectation; `Err` says what differs.
pub fn check(reply: &crate::support::RawReply, expect: Expect) -> Result<(), String> {
    let text = reply.text();
    if reply.status != 200 && text.len() > 1_000 {
        return Err(format!("an answer of {} bytes", text.len()));
    }
    match expect {
        Expect::BadRequest(want) => {
            if reply.status != 400 || !text.contains(want) || text.trim_end().contains('\n') {
                return Err(format!("want 400 {want:?}, got {} {text:?}", reply.status));
            }
            Ok(())
        }
        _ if reply.status != 200 => Err(format!("want 200, got {} {text:?}", reply.status)),
        _ => {
            let json = reply.json();
            let response = &json["response"];
            let allowed = response["allowed"].as_bool();
            let patched = response.get("patch").is_some();
            let message = response["status"]["message"].as_str().unwrap_or_default();
            let warnings = response["warnings"].to_string();
            if message.len() > 1_000 || warnings.len() > 1_000 {
                return Err(format!(
                    "a message of {} bytes",
                    message.len().max(warnings.len())
                ));
            }
            let ok = match expect {
                Expect::Allowed => {
                    allowed == Some(true) && !patched && response.get("warnings").is_none()
                }
                Expect::Injected => {
                    allowed == Some(true) && patched && response.get("warnings").is_none()
                }
                Expect::InjectedWithWarning(want) => {
                    allowed == Some(true) && patched && warnings.contains(want)
                }
                Expect::Denied(want) => {
                    allowed == Some(false)
                        && message.contains(want)
                        && response["status"]["code"] == 400
                }
                Expect::BadRequest(_) => false,
            };
            if ok {
                Ok(())
            } else {
                Err(format!("want {expect:?}, got {json}"))
            }
        }
    }
}

/// Every review case, posted one by one; none may write to the cluster.
pub async fn run(catalog: &Catalog) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        catalog.cluster.reset_requests();
        let reply = catalog.post(&case.body).await;
        if let Err(why) = check(&reply, case.expect) {
            failures.push(format!("{}: {why}", case.name));
        }
        let writes = catalog.writes();
        if !writes.is_empty() {
            failures.push(format!("{}: wrote to the cluster: {writes:?}", case.name));
        }
    }
    (cases.len(), failures)
}
