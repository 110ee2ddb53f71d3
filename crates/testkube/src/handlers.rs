//! Request routing and the verbs: get, list, watch, create, update, patch, delete, plus
//! discovery and OpenAPI documents.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::{Value, json};

use crate::admission::{self, Attributes, ServiceEndpoints};
use crate::discovery;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::openapi;
use crate::patch::{PatchKind, apply_patch, prune_unapplied};
use crate::protobuf;
use crate::resources::{NAMESPACES, RESOURCES, ResourceDef, find};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Store, meta_str, object_rv};
use crate::util::parse_query;
use crate::validation::{check_type, normalize, validate};
use crate::watch::{self, WatchRequest};

/// Response body type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted, as kube-apiserver's default.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// State shared by every connection.
pub struct Shared {
    /// Objects.
    pub store: Store,
    /// Injected faults.
    pub faults: Faults,
    /// Request counts by (verb, resource).
    pub requests: Mutex<BTreeMap<(String, String), u64>>,
    /// Webhook service endpoints.
    pub endpoints: RwLock<ServiceEndpoints>,
    /// `host:port` advertised in `/api`.
    pub server_address: String,
    /// How often open watches with bookmarks enabled get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Whether Deployments are marked available right after each write.
    pub ready_deployments: bool,
    /// Last object each field manager applied, by (resource, namespace, name, manager).
    pub applied: Mutex<HashMap<(usize, String, String, String), Value>>,
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed_unsync()
}

fn json_response(code: u16, value: &impl Serialize, warnings: &[String]) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// The `metav1.Status` response for an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.to_status(), &[]);
    if let Some(secs) = err
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// `PartialObjectMetadata` form of an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Entry point for every HTTP request.
pub async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match route(&shared, req).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is_get = req.method() == Method::GET;
    let get_only = |value: Option<Value>| -> Result<Response<Body>, ApiError> {
        if !is_get {
            return Err(ApiError::method_not_allowed(req.method().as_str()));
        }
        value
            .map(|v| json_response(200, &v, &[]))
            .ok_or_else(ApiError::unknown_resource)
    };
    match segments.as_slice() {
        ["version"] => get_only(Some(discovery::version())),
        ["healthz" | "readyz" | "livez"] => {
            let mut resp = Response::new(full(b"ok".to_vec()));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp)
        }
        ["api"] => get_only(Some(discovery::api_versions(&shared.server_address))),
        ["apis"] => get_only(Some(discovery::api_group_list())),
        ["openapi", "v3"] => get_only(Some(openapi::index())),
        ["openapi", "v3", rest @ ..] => get_only(openapi::document(&rest.join("/"))),
        ["api", "v1", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(shared, "", "v1", rest, req).await
        }
        ["apis", group] => {
            let version = RESOURCES
                .iter()
                .find(|r| r.group == *group)
                .map(|r| r.version);
            get_only(version.map(|v| discovery::api_group(group, v)))
        }
        ["apis", group, version, rest @ ..] => {
            let (group, version) = (group.to_string(), version.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            resource_request(shared, &group, &version, rest, req).await
        }
        _ => Err(ApiError::unknown_resource()),
    }
}

/// A parsed resource path.
struct Target {
    resource: usize,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(group: &str, version: &str, rest: &[String]) -> Option<Target> {
    let split_tail = |tail: &[String]| -> Option<(Option<String>, Option<String>)> {
        match tail {
            [] => Some((None, None)),
            [name] => Some((Some(name.clone()), None)),
            [name, sub] => Some((Some(name.clone()), Some(sub.clone()))),
            _ => None,
        }
    };
    if let [first, ns, plural, tail @ ..] = rest
        && first == "namespaces"
        && let Some(resource) = find(group, version, plural).filter(|r| RESOURCES[*r].namespaced)
    {
        let (name, subresource) = split_tail(tail)?;
        return Some(Target {
            resource,
            namespace: Some(ns.clone()),
            name,
            subresource,
        });
    }
    let (plural, tail) = rest.split_first()?;
    let resource = find(group, version, plural)?;
    if RESOURCES[resource].namespaced && !tail.is_empty() {
        return None;
    }
    let (name, subresource) = split_tail(tail)?;
    Some(Target {
        resource,
        namespace: None,
        name,
        subresource,
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn read_body(req: Request<Incoming>) -> Result<(HeaderMap, Bytes), ApiError> {
    let length = header_str(req.headers(), header::CONTENT_LENGTH)
        .parse::<usize>()
        .ok();
    if length.is_some_and(|l| l > MAX_BODY) {
        return Err(ApiError::too_large(MAX_BODY));
    }
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::too_large(MAX_BODY)
            } else {
                ApiError::bad_request(format!("reading request body: {e}"))
            }
        })?
        .to_bytes();
    Ok((parts.headers, bytes))
}

fn media_type(headers: &HeaderMap) -> String {
    header_str(headers, header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn parse_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("yaml body is not UTF-8: {e}")))?;
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?;
    if value.is_null() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the body is empty",
        ));
    }
    Ok(value)
}

/// Decodes an object body by Content-Type.
fn decode_object(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let ct = media_type(headers);
    match ct.as_str() {
        "" | "application/json" => parse_json(bytes),
        "application/yaml" => parse_yaml(bytes),
        "application/vnd.kubernetes.protobuf" => protobuf::decode(bytes),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn wants_metadata(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT).contains("as=PartialObjectMetadata")
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    def: &'static ResourceDef,
    target: Target,
    query: HashMap<String, String>,
}

impl Ctx<'_> {
    fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    /// Simulated controllers reacting to a stored write.
    fn after_write(&self, stored: &Value) {
        if !self.shared.ready_deployments || self.def.kind != "Deployment" || self.dry_run() {
            return;
        }
        let replicas = stored
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = stored
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        let status = json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
            ]
        });
        if stored.get("status") == Some(&status) {
            return;
        }
        let mut ready = stored.clone();
        ready["status"] = status;
        if let Err(error) =
            self.shared
                .store
                .update(self.target.resource, ready, object_rv(stored), false)
        {
            // Someone wrote in between; their write gets its own status update.
            tracing::debug!(error = %error.message, "simulated rollout skipped");
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(self.def.group, self.def.plural, &self.def.qualified(), name)
    }

    fn namespace(&self) -> &str {
        self.target.namespace.as_deref().unwrap_or_default()
    }

    fn namespace_must_exist(&self) -> Result<(), ApiError> {
        if self.def.namespaced
            && self
                .shared
                .store
                .get(NAMESPACES, "", self.namespace())
                .is_none()
        {
            return Err(ApiError::not_found(
                "",
                "namespaces",
                "namespaces",
                self.namespace(),
            ));
        }
        Ok(())
    }

    /// Makes the body's namespace agree with the URL.
    fn place(&self, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        if self.def.namespaced {
            let url_ns = self.namespace();
            match meta_str(obj, "namespace") {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => obj["metadata"]["namespace"] = json!(url_ns),
            }
        } else if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("namespace");
        }
        Ok(())
    }

    fn check_name(&self, obj: &mut Value) -> Result<(), ApiError> {
        let url_name = self.target.name.as_deref().unwrap_or_default();
        match meta_str(obj, "name") {
            Some(n) if !n.is_empty() && n != url_name => Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            ))),
            _ => {
                obj["metadata"]["name"] = json!(url_name);
                Ok(())
            }
        }
    }

    /// Mutating admission of a create (updates are not admitted: see admission.rs).
    async fn admit(&self, obj: Value) -> Result<admission::Outcome, ApiError> {
        let endpoints = self
            .shared
            .endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let attrs = Attributes {
            resource: self.target.resource,
            namespace: self.namespace(),
            name: &name,
            dry_run: self.dry_run(),
            field_manager: self.query.get("fieldManager").map(String::as_str),
        };
        admission::admit(&self.shared.store, &endpoints, &attrs, obj).await
    }

    fn respond(
        &self,
        code: u16,
        obj: &Value,
        headers: &HeaderMap,
        warnings: &[String],
    ) -> Response<Body> {
        if wants_metadata(headers) {
            json_response(code, &partial(obj), warnings)
        } else {
            json_response(code, obj, warnings)
        }
    }
}

fn verb_of(method: &Method, target: &Target, watch: bool) -> Option<&'static str> {
    let item = target.name.is_some();
    Some(match (method.as_str(), item) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    })
}

async fn resource_request(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    mut rest: Vec<String>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if rest.is_empty() {
        if req.method() != Method::GET {
            return Err(ApiError::method_not_allowed(req.method().as_str()));
        }
        return discovery::api_resource_list(group, version)
            .map(|v| json_response(200, &v, &[]))
            .ok_or_else(ApiError::unknown_resource);
    }
    let legacy_watch = rest.first().is_some_and(|s| s == "watch");
    if legacy_watch {
        rest.remove(0);
    }
    let target = parse_target(group, version, &rest).ok_or_else(ApiError::unknown_resource)?;
    if target.subresource.as_deref().is_some_and(|s| s != "status") {
        return Err(ApiError::unknown_resource());
    }
    let query = parse_query(req.uri().query());
    let watch = legacy_watch || query.get("watch").is_some_and(|v| v == "true" || v == "1");
    let def = &RESOURCES[target.resource];
    let verb = verb_of(req.method(), &target, watch)
        .ok_or_else(|| ApiError::method_not_allowed(req.method().as_str()))?;
    {
        let mut counts = shared.requests.lock().unwrap_or_else(|p| p.into_inner());
        *counts
            .entry((verb.to_string(), def.plural.to_string()))
            .or_default() += 1;
    }
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(err) = shared.faults.take(verb, def.plural) {
        return Err(err);
    }
    if def.namespaced && target.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::method_not_allowed(req.method().as_str()));
    }
    let ctx = Ctx {
        shared,
        def,
        target,
        query,
    };
    match verb {
        "get" => get(&ctx, req.headers()),
        "list" => list(&ctx, req.headers()),
        "watch" => watch_request(&ctx, req.headers()),
        "create" => create(&ctx, req).await,
        "update" => update(&ctx, req).await,
        "patch" => patch(&ctx, req).await,
        "delete" => delete(&ctx, req).await,
        // deletecollection is counted (a write the counters should see) but not served.
        _ => Err(ApiError::method_not_allowed("DELETE")),
    }
}

fn get(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let name = ctx.target.name.as_deref().unwrap_or_default();
    let obj = ctx
        .shared
        .store
        .get(ctx.target.resource, ctx.namespace(), name)
        .ok_or_else(|| ctx.not_found(name))?;
    Ok(ctx.respond(200, &obj, headers, &[]))
}

fn selectors(ctx: &Ctx<'_>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        ctx.query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        ctx.query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    Ok((labels, fields))
}

fn scope<'a>(ctx: &'a Ctx<'_>, fields: &'a FieldSelector) -> Option<&'a str> {
    ctx.target.namespace.as_deref().or(if ctx.def.namespaced {
        fields.namespace()
    } else {
        None
    })
}

#[derive(Serialize)]
struct ListOut<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
    items: Vec<ItemOut<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ItemOut<'a> {
    Full(&'a Value),
    Partial(Value),
}

fn list_body<'a>(
    def: &ResourceDef,
    items: &'a [Arc<Value>],
    rv: u64,
    metadata_only: bool,
) -> ListOut<'a> {
    let (kind, api_version) = if metadata_only {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", def.kind), def.api_version())
    };
    ListOut {
        kind,
        api_version,
        metadata: json!({"resourceVersion": rv.to_string()}),
        items: items
            .iter()
            .map(|o| {
                if metadata_only {
                    ItemOut::Partial(partial(o))
                } else {
                    ItemOut::Full(o)
                }
            })
            .collect(),
    }
}

fn list(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(ctx)?;
    let (items, current_rv) = ctx
        .shared
        .store
        .list(ctx.target.resource, scope(ctx, &fields));
    let mut items: Vec<Arc<Value>> = items
        .into_iter()
        .filter(|o| labels.matches_object(o) && fields.matches(o))
        .collect();
    // Pagination like the real API: `limit` items per page, then a `continue` token. The token
    // carries the first page's resourceVersion (every page reports it, so a watch started from
    // it replays whatever changed meanwhile) and the key of the last item served; items come in
    // (namespace, name) order.
    let mut rv = current_rv;
    if let Some(token) = ctx.query.get("continue").filter(|t| !t.is_empty()) {
        let (token_rv, after) = decode_continue(token)?;
        rv = token_rv;
        items.retain(|o| object_key(o) > after);
    }
    let limit = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut next = None;
    if let Some(limit) = limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = items.last().map(|o| object_key(o)).unwrap_or_default();
        next = Some((encode_continue(rv, &last), remaining));
    }
    let mut body = list_body(ctx.def, &items, rv, wants_metadata(headers));
    if let Some((token, remaining)) = next {
        body.metadata = json!({
            "resourceVersion": rv.to_string(),
            "continue": token,
            "remainingItemCount": remaining,
        });
    }
    Ok(json_response(200, &body, &[]))
}

/// `(namespace, name)` of a stored object: the store's order.
fn object_key(object: &Value) -> (String, String) {
    (
        meta_str(object, "namespace")
            .unwrap_or_default()
            .to_string(),
        meta_str(object, "name").unwrap_or_default().to_string(),
    )
}

fn encode_continue(rv: u64, after: &(String, String)) -> String {
    use base64::Engine as _;
    let token = json!([rv.to_string(), after.0, after.1]).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    use base64::Engine as _;
    let invalid = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let parts: (String, String, String) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let rv = parts.0.parse::<u64>().map_err(|_| invalid())?;
    Ok((rv, (parts.1, parts.2)))
}

fn watch_request(ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(ctx)?;
    let from = match ctx.query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let req = WatchRequest {
        resource: ctx.target.resource,
        namespace: scope(ctx, &fields).map(str::to_string),
        from,
        labels,
        fields,
        bookmarks: ctx
            .query
            .get("allowWatchBookmarks")
            .is_some_and(|v| v == "true"),
        timeout,
        metadata_only: wants_metadata(headers),
    };
    let mut resp = Response::new(watch::start(ctx.shared.clone(), req));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn reject_server_fields(obj: &mut Value) -> Result<(), ApiError> {
    if meta_str(obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "selfLink",
        ] {
            meta.remove(field);
        }
    }
    Ok(())
}

async fn create_object(ctx: &Ctx<'_>, mut obj: Value) -> Result<Response<Body>, ApiError> {
    check_type(ctx.def, &mut obj)?;
    ctx.place(&mut obj)?;
    reject_server_fields(&mut obj)?;
    normalize(ctx.def, &mut obj);
    ctx.namespace_must_exist()?;
    let outcome = ctx.admit(obj).await?;
    let mut obj = outcome.object;
    check_type(ctx.def, &mut obj)?;
    ctx.place(&mut obj)?;
    normalize(ctx.def, &mut obj);
    validate(ctx.def, &obj, None)?;
    let stored = ctx
        .shared
        .store
        .create(ctx.target.resource, obj, ctx.dry_run())?;
    ctx.after_write(&stored);
    Ok(json_response(201, &*stored, &outcome.warnings))
}

async fn create(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (headers, bytes) = read_body(req).await?;
    let obj = decode_object(&headers, &bytes)?;
    create_object(ctx, obj).await
}

/// Status is owned by the status subresource: the main resource keeps the stored status, the
/// status subresource changes nothing else.
fn split_status(ctx: &Ctx<'_>, mut new: Value, old: &Value) -> Value {
    let has_status = matches!(ctx.def.kind, "Pod" | "Deployment" | "Service" | "Namespace");
    if ctx.target.subresource.as_deref() == Some("status") {
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if let Some(rv) = new.pointer("/metadata/resourceVersion").cloned() {
            merged["metadata"]["resourceVersion"] = rv;
        }
        merged
    } else {
        if has_status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        new
    }
}

async fn update(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (headers, bytes) = read_body(req).await?;
    let mut obj = decode_object(&headers, &bytes)?;
    check_type(ctx.def, &mut obj)?;
    ctx.place(&mut obj)?;
    ctx.check_name(&mut obj)?;
    let name = ctx.target.name.clone().unwrap_or_default();
    let old = ctx
        .shared
        .store
        .get(ctx.target.resource, ctx.namespace(), &name)
        .ok_or_else(|| ctx.not_found(&name))?;
    let precondition = match meta_str(&obj, "resourceVersion").filter(|rv| !rv.is_empty()) {
        None => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    if precondition.is_some_and(|p| Some(p) != object_rv(&old)) {
        return Err(ApiError::conflict(
            ctx.def.group,
            ctx.def.plural,
            &ctx.def.qualified(),
            &name,
        ));
    }
    let mut obj = split_status(ctx, obj, &old);
    normalize(ctx.def, &mut obj);
    validate(ctx.def, &obj, Some(&old))?;
    let stored = ctx.shared.store.update(
        ctx.target.resource,
        obj,
        Some(precondition.or(object_rv(&old)).unwrap_or(0)),
        ctx.dry_run(),
    )?;
    ctx.after_write(&stored);
    Ok(json_response(200, &*stored, &[]))
}

async fn patch(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (headers, bytes) = read_body(req).await?;
    let ct = media_type(&headers);
    let kind =
        PatchKind::from_content_type(&ct).ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
    let doc = match kind {
        PatchKind::Apply => parse_json(&bytes).or_else(|_| parse_yaml(&bytes))?,
        _ => parse_json(&bytes)?,
    };
    if kind == PatchKind::Apply && ctx.query.get("fieldManager").is_none_or(String::is_empty) {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let name = ctx.target.name.clone().unwrap_or_default();
    let user_rv = match &doc {
        Value::Object(_) => meta_str(&doc, "resourceVersion").and_then(|rv| rv.parse::<u64>().ok()),
        _ => None,
    };
    for _attempt in 0..8 {
        let Some(old) = ctx
            .shared
            .store
            .get(ctx.target.resource, ctx.namespace(), &name)
        else {
            if kind == PatchKind::Apply {
                let mut obj = doc.clone();
                check_type(ctx.def, &mut obj)?;
                if !obj.get("metadata").is_some_and(Value::is_object) {
                    obj["metadata"] = json!({});
                }
                ctx.check_name(&mut obj)?;
                let created = create_object(ctx, obj).await?;
                remember_applied(ctx, &name, &doc);
                return Ok(created);
            }
            return Err(ctx.not_found(&name));
        };
        if let Some(rv) = user_rv
            && Some(rv) != object_rv(&old)
        {
            return Err(ApiError::conflict(
                ctx.def.group,
                ctx.def.plural,
                &ctx.def.qualified(),
                &name,
            ));
        }
        let mut new = (*old).clone();
        if kind == PatchKind::Apply
            && let Some(previous) = ctx
                .shared
                .applied
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&applied_key(ctx, &name))
        {
            prune_unapplied(&mut new, previous, &doc);
        }
        apply_patch(kind, &mut new, &doc)?;
        check_type(ctx.def, &mut new)?;
        if meta_str(&new, "name") != Some(name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta_str(&new, "name").unwrap_or_default()
            )));
        }
        ctx.place(&mut new)?;
        let mut new = split_status(ctx, new, &old);
        normalize(ctx.def, &mut new);
        validate(ctx.def, &new, Some(&old))?;
        match ctx
            .shared
            .store
            .update(ctx.target.resource, new, object_rv(&old), ctx.dry_run())
        {
            Ok(stored) => {
                ctx.after_write(&stored);
                if kind == PatchKind::Apply {
                    remember_applied(ctx, &name, &doc);
                }
                return Ok(json_response(200, &*stored, &[]));
            }
            // Someone else changed the object between our read and write: patch it again, as
            // the real API does for patches without a resourceVersion.
            Err(e) if e.code == 409 && user_rv.is_none() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        ctx.def.group,
        ctx.def.plural,
        &ctx.def.qualified(),
        &name,
    ))
}

fn applied_key(ctx: &Ctx<'_>, name: &str) -> (usize, String, String, String) {
    let manager = ctx.query.get("fieldManager").cloned().unwrap_or_default();
    (
        ctx.target.resource,
        ctx.namespace().to_string(),
        name.to_string(),
        manager,
    )
}

/// Records what a field manager applied, so its next apply can drop what it no longer sets.
fn remember_applied(ctx: &Ctx<'_>, name: &str, doc: &Value) {
    if !ctx.dry_run() {
        ctx.shared
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(applied_key(ctx, name), doc.clone());
    }
}

fn delete_options(
    headers: &HeaderMap,
    bytes: &[u8],
    ctx: &Ctx<'_>,
) -> Result<(Option<u64>, bool), ApiError> {
    let mut dry_run = ctx.dry_run();
    let mut precondition = None;
    if !bytes.is_empty() {
        let opts = match media_type(headers).as_str() {
            "application/yaml" => parse_yaml(bytes)?,
            "application/vnd.kubernetes.protobuf" => Value::Null,
            _ => parse_json(bytes)?,
        };
        if let Some(rv) = opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            precondition =
                Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?);
        }
        if opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"))
        {
            dry_run = true;
        }
    }
    Ok((precondition, dry_run))
}

fn deleted_response(ctx: &Ctx<'_>, obj: &Value, headers: &HeaderMap) -> Response<Body> {
    // Namespaces and pods come back as objects (they terminate gracefully in a real cluster);
    // everything else as a Success status, like kube-apiserver.
    if matches!(ctx.def.kind, "Namespace" | "Pod") {
        return ctx.respond(200, obj, headers, &[]);
    }
    let mut details = json!({
        "name": meta_str(obj, "name").unwrap_or_default(),
        "kind": ctx.def.plural,
        "uid": meta_str(obj, "uid").unwrap_or_default(),
    });
    if !ctx.def.group.is_empty() {
        details["group"] = json!(ctx.def.group);
    }
    json_response(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        &[],
    )
}

async fn delete(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let (headers, bytes) = read_body(req).await?;
    let (precondition, dry_run) = delete_options(&headers, &bytes, ctx)?;
    let name = ctx.target.name.clone().unwrap_or_default();
    let obj = ctx.shared.store.delete(
        ctx.target.resource,
        ctx.namespace(),
        &name,
        precondition,
        dry_run,
    )?;
    Ok(deleted_response(ctx, &obj, &headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_namespaced_and_cluster_paths() {
        let p = |s: &str| -> Vec<String> { s.split('/').map(str::to_string).collect() };
        let t = parse_target("", "v1", &p("namespaces/shop/secrets/key")).expect("secret");
        assert_eq!(RESOURCES[t.resource].plural, "secrets");
        assert_eq!(t.namespace.as_deref(), Some("shop"));
        assert_eq!(t.name.as_deref(), Some("key"));
        let t = parse_target("", "v1", &p("namespaces/shop")).expect("namespace");
        assert_eq!(t.resource, NAMESPACES);
        assert_eq!(t.name.as_deref(), Some("shop"));
        let t = parse_target("", "v1", &p("namespaces/shop/status")).expect("ns status");
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_target("", "v1", &p("secrets")).expect("all secrets");
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(parse_target("", "v1", &p("secrets/x")).is_none());
        assert!(parse_target("", "v1", &p("nodes")).is_none());
        assert!(parse_target("apps", "v1", &p("namespaces/a/deployments/web/status")).is_some());
    }
}
