//! A Function URL with `AuthType: AWS_IAM` and `Cors`, in front of a real function, called with
//! a plain HTTP client: requests signed with `aws-sigv4` as the AWS SDK signs them, unsigned and
//! badly signed ones, and a browser's preflight and cross-origin calls.

use std::net::SocketAddr;

use aws_sigv4::http_request::SigningSettings;
use bytes::Bytes;
use coldstart_emulator::{
    LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY, LOCAL_SESSION_TOKEN, LocalKey, UrlAuthType,
    UrlCors, UrlSettings, serve_function_url,
};
use http_body_util::Full;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, RawResponse, fixture, function, send};

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// `fx-http` as `web` behind a Function URL served with `settings`.
struct Url {
    h: Harness,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Url {
    async fn start(settings: UrlSettings) -> Url {
        let h = Harness::start(vec![function("web", fixture("fx-http"))]).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        tokio::spawn(serve_function_url(
            h.emulator.clone(),
            "web".into(),
            settings,
            listener,
            stop.clone(),
        ));
        Url { h, addr, stop }
    }

    /// How many times the function was invoked (its `START` lines).
    fn invocations(&self) -> usize {
        self.h
            .logs
            .all()
            .iter()
            .filter(|l| l.starts_with("web: START RequestId:"))
            .count()
    }

    /// A request to the URL, unsigned.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> http::Request<Bytes> {
        request(self.addr, method, path, headers)
    }

    async fn send(&self, request: http::Request<Bytes>) -> RawResponse {
        deliver(self.addr, request).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.h.stop().await;
    }
}

/// A request to `addr`, unsigned, with its full URL (as a signer needs it).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> http::Request<Bytes> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(http::header::HOST, addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Bytes::new()).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `request` to `addr`, with the path alone on the request line.
async fn deliver(addr: SocketAddr, request: http::Request<Bytes>) -> RawResponse {
    let (mut parts, body) = request.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    send(addr, http::Request::from_parts(parts, Full::new(body))).await
}

fn iam() -> UrlSettings {
    UrlSettings {
        auth_type: UrlAuthType::AwsIam,
        credentials: vec![LocalKey::coldstart()],
        ..UrlSettings::default()
    }
}

/// Signs `request` for service `lambda` in `us-east-1` as the AWS SDK does.
fn signed(
    request: http::Request<Bytes>,
    secret: &str,
    token: Option<&str>,
) -> http::Request<Bytes> {
    signed_with(SigningSettings::default(), request, secret, token)
}

/// `request` as a presigned URL, good for five minutes.
fn presigned(request: http::Request<Bytes>) -> http::Request<Bytes> {
    let mut settings = SigningSettings::default();
    settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(300));
    signed_with(
        settings,
        request,
        LOCAL_SECRET_ACCESS_KEY,
        Some(LOCAL_SESSION_TOKEN),
    )
}

fn signed_with(
    settings: SigningSettings,
    request: http::Request<Bytes>,
    secret: &str,
    token: Option<&str>,
) -> http::Request<Bytes> {
    crate::support::sign_v4(request, "lambda", settings, secret, token)
}

fn with_body(mut request: http::Request<Bytes>, body: &str) -> http::Request<Bytes> {
    *request.body_mut() = Bytes::from(body.to_owned());
    request
}

#[tokio::test]
async fn a_signed_request_reaches_the_function_with_the_callers_iam_identity() {
    let url = Url::start(iam()).await;
    let request = with_body(
        url.request(
            "POST",
            "/orders/a%20b?x=1&y=two",
            &[("content-type", "application/json")],
        ),
        r#"{"order":1}"#,
    );
    let r = url
        .send(signed(request, LOCAL_SECRET_ACCESS_KEY, None))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let event = &r.json()["event"];
    let iam = &event["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["accessKey"], LOCAL_ACCESS_KEY_ID);
    assert_eq!(iam["accountId"], "012345678912");
    assert_eq!(
        iam["userArn"],
        "arn:aws:iam::012345678912:user/coldstart-local"
    );
    assert_eq!(iam["callerId"], iam["userId"]);
    assert!(iam.get("cognitoIdentity").is_some_and(|c| c.is_null()));
    assert_eq!(event["body"], r#"{"order":1}"#);

    // With the session token coldstart hands functions.
    let r = url
        .send(signed(
            url.request("GET", "/", &[]),
            LOCAL_SECRET_ACCESS_KEY,
            Some(LOCAL_SESSION_TOKEN),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["event"]["requestContext"]["authorizer"]["iam"]["accessKey"],
        LOCAL_ACCESS_KEY_ID
    );

    // A presigned URL: the signature in the query string.
    let r = url
        .send(presigned(url.request("GET", "/report?month=5", &[])))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let event = &r.json()["event"];
    assert_eq!(event["queryStringParameters"]["month"], "5");
    assert_eq!(
        event["requestContext"]["authorizer"]["iam"]["accessKey"],
        LOCAL_ACCESS_KEY_ID
    );
    url.stop().await;
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_get_403_and_never_reach_the_function() {
    let url = Url::start(iam()).await;
    let unsigned = url.send(url.request("GET", "/", &[])).await;
    assert_eq!(unsigned.status, 403);
    assert_eq!(unsigned.json(), json!({"Message": "Forbidden"}));
    assert_eq!(
        unsigned.header("x-amzn-errortype"),
        Some("AccessDeniedException")
    );
    assert!(unsigned.header("x-amzn-requestid").is_some());

    let wrong_secret = url
        .send(signed(url.request("GET", "/", &[]), "not-the-secret", None))
        .await;
    assert_eq!(wrong_secret.status, 403);
    assert_eq!(wrong_secret.json(), json!({"message": SIGNATURE_MISMATCH}));
    assert_eq!(
        wrong_secret.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );

    // Signed, then changed on the way: the body no longer matches.
    let tampered = with_body(
        signed(
            with_body(url.request("POST", "/", &[]), "one"),
            LOCAL_SECRET_ACCESS_KEY,
            None,
        ),
        "two",
    );
    let tampered = url.send(tampered).await;
    assert_eq!(tampered.status, 403);
    assert_eq!(tampered.json()["message"], SIGNATURE_MISMATCH);
    assert_eq!(url.invocations(), 0, "{:?}", url.h.logs.all());

    // The same URL lets a good signature through: the refusals were not a broken function.
    let good = url
        .send(signed(
            url.request("GET", "/", &[]),
            LOCAL_SECRET_ACCESS_KEY,
            None,
        ))
        .await;
    assert_eq!(good.status, 200, "{good:?}");
    assert_eq!(url.invocations(), 1);
    url.stop().await;
}

fn cors() -> UrlCors {
    UrlCors {
        allow_origins: vec!["https://app.example.com".into()],
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_headers: vec!["content-type".into(), "authorization".into()],
        expose_headers: vec!["x-amzn-requestid".into()],
        allow_credentials: true,
        max_age: Some(300),
    }
}

#[tokio::test]
async fn a_browser_preflight_is_answered_by_the_url_without_invoking_the_function() {
    // With AWS_IAM too: a browser's preflight carries no signature.
    let url = Url::start(UrlSettings {
        cors: Some(cors()),
        ..iam()
    })
    .await;
    let preflight = url
        .send(url.request(
            "OPTIONS",
            "/orders",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,authorization",
                ),
            ],
        ))
        .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type,authorization")
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("300"));
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );

    let stranger = url
        .send(url.request(
            "OPTIONS",
            "/orders",
            &[
                ("origin", "https://elsewhere.example.net"),
                ("access-control-request-method", "POST"),
            ],
        ))
        .await;
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    assert_eq!(url.invocations(), 0, "{:?}", url.h.logs.all());
    url.stop().await;
}

#[tokio::test]
async fn a_cross_origin_call_from_an_allowed_origin_carries_the_cors_headers() {
    let url = Url::start(UrlSettings {
        cors: Some(cors()),
        ..UrlSettings::default()
    })
    .await;
    let allowed = url
        .send(url.request("GET", "/", &[("origin", "https://app.example.com")]))
        .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        allowed.header("access-control-expose-headers"),
        Some("x-amzn-requestid")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let other = url
        .send(url.request("GET", "/", &[("origin", "https://elsewhere.example.net")]))
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Without `Cors`, OPTIONS is the function's to answer.
    let plain = Url::start(UrlSettings::default()).await;
    let options = plain
        .send(plain.request(
            "OPTIONS",
            "/",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
            ],
        ))
        .await;
    assert_eq!(
        options.json()["event"]["requestContext"]["http"]["method"],
        "OPTIONS"
    );
    plain.stop().await;
    url.stop().await;
}

/// A SAM template whose function has an `AWS_IAM` Function URL with `Cors`.
const TEMPLATE: &str = "
Transform: AWS::Serverless-2016-10-31
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: web
      Runtime: provided.al2023
      Handler: bootstrap
      FunctionUrlConfig:
        AuthType: AWS_IAM
        Cors:
          AllowOrigins: [https://app.example.com]
          AllowMethods: [POST]
          AllowHeaders: [authorization, x-amz-date, x-amz-security-token]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_an_aws_iam_url_accepts_the_local_credentials_and_refuses_the_rest() {
    let dir = std::env::temp_dir().join(format!("coldstart-url-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("web")).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(fixture("fx-http"), dir.join("web").join("bootstrap"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("template.yaml"), TEMPLATE).unwrap_or_else(|e| panic!("{e}"));
    let source = coldstart_stack::Source::find(&dir).unwrap_or_else(|e| panic!("{e}"));
    let stack = source
        .load(&coldstart_stack::TemplateOptions {
            port_base: 0,
            ..coldstart_stack::TemplateOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let logs = std::sync::Arc::new(crate::support::Logs::default());
    let mut options = coldstart_stack::StartOptions::new(logs.clone());
    options.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    options.freeze = false;
    let running = coldstart_stack::start(&stack, options)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    let addr = running
        .endpoint("Web", coldstart_stack::EndpointKind::Url)
        .unwrap_or_else(|| panic!("no URL"))
        .addr;

    let unsigned = deliver(addr, request(addr, "POST", "/", &[])).await;
    assert_eq!(unsigned.status, 403);
    assert_eq!(unsigned.json(), json!({"Message": "Forbidden"}));
    let preflight = deliver(
        addr,
        request(
            addr,
            "OPTIONS",
            "/",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
        ),
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("POST")
    );
    let good = deliver(
        addr,
        signed(
            request(addr, "POST", "/", &[("origin", "https://app.example.com")]),
            LOCAL_SECRET_ACCESS_KEY,
            Some(LOCAL_SESSION_TOKEN),
        ),
    )
    .await;
    assert_eq!(good.status, 200, "{good:?}");
    assert_eq!(
        good.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        good.json()["event"]["requestContext"]["authorizer"]["iam"]["accessKey"],
        LOCAL_ACCESS_KEY_ID
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
