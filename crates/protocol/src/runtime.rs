//! The Runtime API (`/2018-06-01`): what a runtime calls and what the execution environment answers.
//!
//! Paths are written for a server that sits at the root of `AWS_LAMBDA_RUNTIME_API`, exactly as in
//! Lambda: a client builds `http://{AWS_LAMBDA_RUNTIME_API}{path}`.

use http::HeaderName;

/// API version prefix of the Runtime API.
pub const VERSION: &str = "2018-06-01";

/// `GET /2018-06-01/runtime/invocation/next`: blocks until the next invocation.
pub const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// `POST /2018-06-01/runtime/init/error`: reports a failure before the first `next`.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

/// Prefix of the per-invocation paths: `/2018-06-01/runtime/invocation/{id}/response|error`.
pub const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";

/// `POST /2018-06-01/runtime/invocation/{AwsRequestId}/response`.
pub fn response_path(request_id: &str) -> String {
    format!("{INVOCATION_PREFIX}{request_id}/response")
}

/// `POST /2018-06-01/runtime/invocation/{AwsRequestId}/error`.
pub fn error_path(request_id: &str) -> String {
    format!("{INVOCATION_PREFIX}{request_id}/error")
}

/// A parsed Runtime API request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /2018-06-01/runtime/invocation/next`
    Next,
    /// `POST /2018-06-01/runtime/invocation/{id}/response`
    Response(&'a str),
    /// `POST /2018-06-01/runtime/invocation/{id}/error`
    Error(&'a str),
    /// `POST /2018-06-01/runtime/init/error`
    InitError,
}

impl<'a> Route<'a> {
    /// Recognises a Runtime API path; `None` for anything else.
    pub fn parse(path: &'a str) -> Option<Self> {
        if path == NEXT_PATH {
            return Some(Route::Next);
        }
        if path == INIT_ERROR_PATH {
            return Some(Route::InitError);
        }
        let rest = path.strip_prefix(INVOCATION_PREFIX)?;
        let (id, action) = rest.rsplit_once('/')?;
        if id.is_empty() || id.contains('/') {
            return None;
        }
        match action {
            "response" => Some(Route::Response(id)),
            "error" => Some(Route::Error(id)),
            _ => None,
        }
    }
}

/// `Lambda-Runtime-Aws-Request-Id`: the invocation's request id (on `next`).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
/// `Lambda-Runtime-Deadline-Ms`: Unix epoch milliseconds at which the invocation times out.
pub const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
/// `Lambda-Runtime-Invoked-Function-Arn`: the ARN the caller invoked, with its qualifier.
pub const INVOKED_FUNCTION_ARN: HeaderName =
    HeaderName::from_static("lambda-runtime-invoked-function-arn");
/// `Lambda-Runtime-Trace-Id`: the X-Ray tracing header; runtimes export it as `_X_AMZN_TRACE_ID`.
pub const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
/// `Lambda-Runtime-Client-Context`: the caller's client context as JSON (already base64-decoded).
pub const CLIENT_CONTEXT: HeaderName = HeaderName::from_static("lambda-runtime-client-context");
/// `Lambda-Runtime-Cognito-Identity`: `{"cognitoIdentityId","cognitoIdentityPoolId"}` as JSON.
pub const COGNITO_IDENTITY: HeaderName = HeaderName::from_static("lambda-runtime-cognito-identity");
/// `Lambda-Runtime-Aws-Tenant-Id`: the tenant of a tenant-isolated invocation.
pub const TENANT_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-tenant-id");
/// `Lambda-Runtime-Invocation-Id`: per-attempt nonce; echoed on `/response` and `/error` when present.
pub const INVOCATION_ID: HeaderName = HeaderName::from_static("lambda-runtime-invocation-id");
/// `Lambda-Runtime-Function-Error-Type`: error category on `/error`, `/init/error` and as a trailer.
pub const FUNCTION_ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");
/// `Lambda-Runtime-Function-Error-Body`: base64 error JSON, as a trailer of a streamed response.
pub const FUNCTION_ERROR_BODY: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-body");
/// `Lambda-Runtime-Function-XRay-Error-Cause`: optional X-Ray cause on `/error`.
pub const XRAY_ERROR_CAUSE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-xray-error-cause");
/// `Lambda-Runtime-Function-Response-Mode`: `streaming` for a streamed `/response`.
pub const RESPONSE_MODE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-response-mode");

/// The only accepted value of [`RESPONSE_MODE`].
pub const RESPONSE_MODE_STREAMING: &str = "streaming";

/// Content type of an error body that carries an X-Ray `errorCause` to strip before forwarding.
pub const ERROR_CAUSE_CONTENT_TYPE: &str = "application/vnd.aws.lambda.error.cause+json";

/// Body of every `202 Accepted` answer of the Runtime API.
pub const ACCEPTED_BODY: &str = r#"{"status":"OK"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route_and_rejects_the_rest() {
        assert_eq!(Route::parse(NEXT_PATH), Some(Route::Next));
        assert_eq!(Route::parse(INIT_ERROR_PATH), Some(Route::InitError));
        assert_eq!(
            Route::parse(&response_path("abc")),
            Some(Route::Response("abc"))
        );
        assert_eq!(Route::parse(&error_path("abc")), Some(Route::Error("abc")));
        assert_eq!(
            Route::parse("/2018-06-01/runtime/invocation//response"),
            None
        );
        assert_eq!(
            Route::parse("/2018-06-01/runtime/invocation/a/b/response"),
            None
        );
        assert_eq!(Route::parse("/2018-06-01/runtime/invocation/a/other"), None);
        assert_eq!(Route::parse("/runtime/invocation/next"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_path_is_parsed_without_a_panic(path in "\\PC{0,80}") {
            let _ = Route::parse(&path);
        }

        #[test]
        fn a_request_id_without_a_slash_round_trips_through_its_paths(id in "[^/]{1,64}") {
            let (response, error) = (response_path(&id), error_path(&id));
            proptest::prop_assert_eq!(Route::parse(&response), Some(Route::Response(&id)));
            proptest::prop_assert_eq!(Route::parse(&error), Some(Route::Error(&id)));
        }

        #[test]
        fn a_request_id_with_a_slash_is_no_route(a in "[^/]{0,8}", b in "[^/]{0,8}") {
            let path = response_path(&format!("{a}/{b}"));
            proptest::prop_assert_eq!(Route::parse(&path), None);
        }
    }
}
