//! HTTP/1.1 behaviour: methods, paths, content types and sizes, sent byte for byte.

use crate::support::{Catalog, REVIEW, http_request};

pub struct Case {
    pub name: &'static str,
    pub request: Vec<u8>,
    /// The status, and a part of the body (empty: anything).
    pub status: u16,
    pub text: &'static str,
}

const JSON: (&str, &str) = ("content-type", "application/json");
const SERVED: &str = "this server answers POST /inject";

fn req(name: &'static str, request: Vec<u8>, status: u16, text: &'static str) -> Case {
    Case {
        name,
        request,
        status,
        text,
    }
}

fn get(name: &'static str, method: &str, path: &str, status: u16, text: &'static str) -> Case {
    req(name, http_request(method, path, &[], b""), status, text)
}

fn post_as(name: &'static str, content_type: &str, status: u16, text: &'static str) -> Case {
    let headers = [("content-type", content_type)];
    req(
        name,
        http_request("POST", "/inject", &headers, REVIEW.as_bytes()),
        status,
        text,
    )
}

fn methods_and_paths() -> Vec<Case> {
    let long_path = format!("/{}", "a".repeat(4000));
    vec![
        get("GET /inject", "GET", "/inject", 405, "GET is not allowed on /inject"),
        get("PUT /inject", "PUT", "/inject", 405, "PUT is not allowed on /inject"),
        get("DELETE /inject", "DELETE", "/inject", 405, SERVED),
        get("PATCH /inject", "PATCH", "/inject", 405, SERVED),
        get("OPTIONS /inject", "OPTIONS", "/inject", 405, SERVED),
        get("POST /healthz", "POST", "/healthz", 405, "POST is not allowed on /healthz"),
        get("POST /metrics", "POST", "/metrics", 405, SERVED),
        get("GET /nope", "GET", "/nope", 404, "no such path /nope"),
        get("GET /", "GET", "/", 404, "no such path /:"),
        get("POST /inject/", "POST", "/inject/", 404, "no such path /inject/"),
        get("POST /INJECT", "POST", "/INJECT", 404, "no such path /INJECT"),
        get("a path of 4,000 characters", "GET", &long_path, 404, "..."),
        get("GET /healthz", "GET", "/healthz", 200, "ok"),
        get("HEAD /healthz", "HEAD", "/healthz", 200, ""),
        get("GET /readyz", "GET", "/readyz", 200, "ok"),
        get("GET /metrics", "GET", "/metrics", 200, "sparrow_admissions_total"),
        req(
            "POST /inject with a query",
            http_request("POST", "/inject?timeout=10s", &[JSON], REVIEW.as_bytes()),
            200,
            "\"patchType\":\"JSONPatch\"",
        ),
        req("a request line that is not HTTP", b"HELLO\r\n\r\n".to_vec(), 400, ""),
        req(
            "HTTP/1.0",
            format!(
                "POST /inject HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{REVIEW}",
                REVIEW.len()
            )
            .into_bytes(),
            200,
            "\"allowed\":true",
        ),
        req(
            "a header of 100 KiB",
            http_request("GET", "/healthz", &[("x-big", &"b".repeat(100 * 1024))], b""),
            431,
            "",
        ),
    ]
}

fn content_types() -> Vec<Case> {
    vec![
        post_as(
            "text/plain",
            "text/plain",
            415,
            "Content-Type \"text/plain\" is not supported",
        ),
        post_as(
            "a form",
            "application/x-www-form-urlencoded",
            415,
            "send the AdmissionReview as application/json",
        ),
        post_as(
            "multipart",
            "multipart/form-data; boundary=x",
            415,
            "is not supported",
        ),
        post_as(
            "application/jsonx",
            "application/jsonx",
            415,
            "is not supported",
        ),
        post_as("YAML", "application/yaml", 415, "is not supported"),
        post_as(
            "protobuf",
            "application/vnd.kubernetes.protobuf",
            415,
            "is not supported",
        ),
        post_as(
            "JSON with a charset",
            "application/json; charset=utf-8",
            200,
            "\"allowed\":true",
        ),
        post_as(
            "JSON in upper case",
            "APPLICATION/JSON",
            200,
            "\"allowed\":true",
        ),
        req(
            "no content type",
            http_request("POST", "/inject", &[], REVIEW.as_bytes()),
            415,
            "has no readable Content-Type",
        ),
    ]
}

fn sizes() -> Vec<Case> {
    let limit = sparrow_controller::MAX_REVIEW_BYTES;
    let mut at_limit = REVIEW.as_bytes().to_vec();
    at_limit.resize(limit, b' ');
    let mut over = REVIEW.as_bytes().to_vec();
    over.resize(limit + 1, b' ');
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 1 << 20));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let declared = "the declared body of 104857600 bytes is larger than the 3145728-byte limit";
    vec![
        req(
            "100 MB declared, expecting 100-continue, nothing sent",
            http_request(
                "POST",
                "/inject",
                &[
                    JSON,
                    ("content-length", "104857600"),
                    ("expect", "100-continue"),
                ],
                b"",
            ),
            413,
            declared,
        ),
        req(
            "100 MB declared, 64 KiB sent",
            http_request(
                "POST",
                "/inject",
                &[JSON, ("content-length", "104857600")],
                &[b' '; 64 * 1024],
            ),
            413,
            declared,
        ),
        req(
            "a chunked body growing past the limit",
            http_request(
                "POST",
                "/inject",
                &[JSON, ("transfer-encoding", "chunked")],
                &chunked,
            ),
            413,
            "the body is larger than the 3145728-byte limit",
        ),
        req(
            "a body at the limit",
            http_request("POST", "/inject", &[JSON], &at_limit),
            200,
            "\"allowed\":true",
        ),
        req(
            "a body one byte over the limit",
            http_request("POST", "/inject", &[JSON], &over),
            413,
            "larger than the 3145728-byte limit",
        ),
        req(
            "a Content-Length that is not a number",
            http_request("POST", "/inject", &[JSON, ("content-length", "lots")], b""),
            400,
            "",
        ),
        req(
            "two different Content-Lengths",
            http_request(
                "POST",
                "/inject",
                &[JSON, ("content-length", "2"), ("content-length", "3")],
                b"{}",
            ),
            400,
            "",
        ),
        req(
            "Content-Length and chunked together",
            http_request(
                "POST",
                "/inject",
                &[
                    JSON,
                    ("content-length", "5"),
                    ("transfer-encoding", "chunked"),
                ],
                b"0\r\n\r\n",
            ),
            400,
            "",
        ),
        req(
            "an empty JSON body",
            http_request("POST", "/inject", &[JSON], b""),
            400,
            "the body is not an AdmissionReview",
        ),
    ]
}

pub fn cases() -> Vec<Case> {
    [methods_and_paths(), content_types(), sizes()]
        .into_iter()
        .flatten()
        .collect()
}

pub async fn run(catalog: &Catalog) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        catalog.cluster.reset_requests();
        let reply = catalog.raw(&case.request).await;
        let text = reply.text();
        let one_line = text.trim_end().lines().count() <= 1 || reply.status == 200;
        if reply.status != case.status
            || !text.contains(case.text)
            || !one_line
            || (reply.status != 200 && text.len() > 1_000)
        {
            failures.push(format!(
                "{}: want {} {:?}, got {} {:?}",
                case.name,
                case.status,
                case.text,
                reply.status,
                text.chars().take(300).collect::<String>()
            ));
        }
        let writes = catalog.writes();
        if !writes.is_empty() {
            failures.push(format!("{}: wrote to the cluster: {writes:?}", case.name));
        }
    }
    (cases.len(), failures)
}
