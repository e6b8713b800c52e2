//! API Gateway authorizers from a SAM template served as `coldstart up` serves it, called with a
//! plain HTTP client: HTTP API Lambda authorizers (simple responses and IAM policies), a REST
//! API `TOKEN` authorizer with its cache, and a JWT authorizer whose keys come from a local
//! issuer's discovery document. Each refusal has AWS's status and body; the function sees the
//! authorizer's context.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use coldstart_stack::{EndpointKind, Running};

use crate::support::{Logs, RawResponse, TemplateProject, call_endpoint, invocations, repo_file};

fn template(issuer: &str) -> String {
    format!(
        r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: http
      Events:
        Simple:
          Type: HttpApi
          Properties: {{ ApiId: !Ref Http, Path: /simple, Method: get }}
        Policy:
          Type: HttpApi
          Properties: {{ ApiId: !Ref Http, Path: /policy, Method: get, Auth: {{ Authorizer: Policy }} }}
        Jwt:
          Type: HttpApi
          Properties:
            ApiId: !Ref Http
            Path: /jwt
            Method: get
            Auth: {{ Authorizer: Jwt, AuthorizationScopes: [items/read] }}
        Iam:
          Type: HttpApi
          Properties: {{ ApiId: !Ref Http, Path: /iam, Method: get, Auth: {{ Authorizer: AWS_IAM }} }}
        RestIam:
          Type: Api
          Properties: {{ RestApiId: !Ref Rest, Path: /iam, Method: get, Auth: {{ Authorizer: AWS_IAM }} }}
        Open:
          Type: HttpApi
          Properties: {{ ApiId: !Ref Http, Path: /open, Method: get, Auth: {{ Authorizer: NONE }} }}
        Items:
          Type: Api
          Properties: {{ RestApiId: !Ref Rest, Path: /items, Method: get }}
        WhoAmI:
          Type: Api
          Properties: {{ RestApiId: !Ref Rest, Path: /whoami, Method: get, Auth: {{ Authorizer: Req }} }}
  Auth:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: auth
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Simple
        Authorizers:
          Simple:
            FunctionArn: !GetAtt Auth.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity: {{ Headers: [Authorization] }}
          Policy:
            FunctionArn: !GetAtt Auth.Arn
            AuthorizerPayloadFormatVersion: "1.0"
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: {issuer}
              audience: [coldstart-tests]
  Rest:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth:
        DefaultAuthorizer: Token
        Authorizers:
          Token:
            FunctionArn: !GetAtt Auth.Arn
            Identity:
              Header: Authorization
              ValidationExpression: "[a-z]+"
              ReauthorizeEvery: 300
          Req:
            FunctionArn: !GetAtt Auth.Arn
            FunctionPayloadType: REQUEST
            Identity: {{ Headers: [Authorization], ReauthorizeEvery: 0 }}
"#
    )
}

fn project(name: &str, issuer: &str) -> TemplateProject {
    TemplateProject::new(
        &format!("authorizers-{name}"),
        &template(issuer),
        &[("http", "fx-http"), ("auth", "fx-authorizer")],
    )
}

async fn get(running: &Running, api: &str, path: &str, token: Option<&str>) -> RawResponse {
    let kind = if api == "Rest" {
        EndpointKind::RestApi
    } else {
        EndpointKind::HttpApi
    };
    let headers: Vec<(&str, &str)> = token.map(|t| ("authorization", t)).into_iter().collect();
    call_endpoint(running, api, kind, "GET", path, &headers, "").await
}

fn json_of(r: &RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// The event the function saw (fx-http answers with it).
fn event_of(r: &RawResponse) -> Value {
    let body = json_of(r);
    match body.get("body").and_then(Value::as_str) {
        // A REST API's proxy response carries the summary as its body.
        Some(text) => serde_json::from_str::<Value>(text).unwrap_or(Value::Null)["event"].clone(),
        None => body["event"].clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_lambda_authorizers_decide_and_hand_their_context_to_the_function() {
    let project = project("http", "https://issuer.invalid");
    let (running, logs) = project.serve().await;

    // No identity: 401 without running the authorizer.
    let r = get(&running, "Http", "/simple", None).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (401, json!({"message": "Unauthorized"}))
    );
    assert_eq!(invocations(&logs, "Auth"), 0);

    // A simple response: yes passes the context as `authorizer.lambda`, no is 403.
    let r = get(&running, "Http", "/simple", Some("yes")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let authorizer = &event_of(&r)["requestContext"]["authorizer"];
    assert_eq!(authorizer["lambda"]["user"], "yes", "{authorizer}");
    let r = get(&running, "Http", "/simple", Some("no")).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (403, json!({"message": "Forbidden"}))
    );

    // Payload 1.0: an IAM policy evaluated against the route's ARN.
    let r = get(&running, "Http", "/policy", Some("allow")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        event_of(&r)["requestContext"]["authorizer"]["lambda"]["user"],
        "allow"
    );
    for refused in ["deny", "elsewhere"] {
        let r = get(&running, "Http", "/policy", Some(refused)).await;
        assert_eq!(
            (r.status, json_of(&r)),
            (403, json!({"message": "Forbidden"})),
            "{refused}"
        );
    }

    // An authorizer that answers garbage or crashes is the API's 500; the function never runs.
    let before = invocations(&logs, "Web");
    for broken in ["garbage", "crash"] {
        let r = get(&running, "Http", "/simple", Some(broken)).await;
        assert_eq!(
            (r.status, json_of(&r)),
            (500, json!({"message": "Internal Server Error"})),
            "{broken}"
        );
    }
    assert_eq!(invocations(&logs, "Web"), before);

    // `Authorizer: NONE` opens a route of an API with a default authorizer.
    let r = get(&running, "Http", "/open", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_token_authorizer_caches_its_policy_and_refuses_as_rest_apis_do() {
    let project = project("rest", "https://issuer.invalid");
    let (running, logs) = project.serve().await;
    let rest = |token| get(&running, "Rest", "/prod/items", token);

    let r = rest(None).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (401, json!({"message": "Unauthorized"}))
    );
    // ValidationExpression: a token that does not match never reaches the authorizer.
    let r = rest(Some("Not-A-Token!")).await;
    assert_eq!(r.status, 401);
    assert_eq!(invocations(&logs, "Auth"), 0);

    // Allowed: the function sees principalId and context; the answer is cached by token, so
    // three requests run the authorizer once.
    for _ in 0..3 {
        let r = rest(Some("allow")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let authorizer = &event_of(&r)["requestContext"]["authorizer"];
        assert_eq!(authorizer["principalId"], "user-allow", "{authorizer}");
        assert_eq!(authorizer["user"], "allow");
        assert_eq!(authorizer["calls"], 1, "the cached answer: {authorizer}");
        assert_eq!(authorizer["type"], "TOKEN");
    }
    assert_eq!(invocations(&logs, "Auth"), 1);

    // A REQUEST authorizer without caching runs for every request and gets the request's event.
    for _ in 0..2 {
        let r = get(&running, "Rest", "/prod/whoami", Some("allow")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let authorizer = &event_of(&r)["requestContext"]["authorizer"];
        assert_eq!(authorizer["type"], "REQUEST", "{authorizer}");
    }
    assert_eq!(invocations(&logs, "Auth"), 3);

    let r = rest(Some("deny")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        json_of(&r),
        json!({"Message": "User is not authorized to access this resource with an explicit deny"})
    );
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    let r = rest(Some("elsewhere")).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (
            403,
            json!({"Message": "User is not authorized to access this resource"})
        )
    );
    // The authorizer fails with "Unauthorized": 401; it crashes: 500 with a null message.
    let r = rest(Some("unauthorized")).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (401, json!({"message": "Unauthorized"}))
    );
    let r = rest(Some("crash")).await;
    assert_eq!((r.status, json_of(&r)), (500, json!({"message": null})));
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("AuthorizerConfigurationException")
    );
    running.stop().await;
}

/// A local OpenID issuer: its discovery document and JWKS, until dropped.
struct Issuer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr: SocketAddr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{addr}");
    let jwks = std::fs::read(repo_file("fixtures/jwt/jwks.json")).unwrap_or_else(|e| panic!("{e}"));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")}).to_string();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (jwks, discovery) = (jwks.clone(), discovery.clone());
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let body = match req.uri().path() {
                    "/.well-known/openid-configuration" => Bytes::from(discovery.clone()),
                    "/keys" => Bytes::from(jwks.clone()),
                    _ => Bytes::new(),
                };
                async move { Ok::<_, Infallible>(http::Response::new(Full::new(body))) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Issuer { url, task }
}

fn token(issuer: &str, claims: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut all = json!({"iss": issuer, "aud": "coldstart-tests", "sub": "user-1", "iat": now - 10, "exp": now + 600});
    if let (Some(all), Value::Object(extra)) = (all.as_object_mut(), claims) {
        all.extend(extra);
    }
    let pem =
        std::fs::read(repo_file("fixtures/jwt/private.pem")).unwrap_or_else(|e| panic!("{e}"));
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| panic!("{e}"));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key".into());
    jsonwebtoken::encode(&header, &all, &key).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_authorizer_verifies_signature_issuer_audience_expiry_and_scopes() {
    let issuer = issuer().await;
    let project = project("jwt", &issuer.url);
    let (running, logs): (Running, std::sync::Arc<Logs>) = project.serve().await;
    let running = &running;
    let jwt = |token: String| async move {
        get(running, "Http", "/jwt", Some(&format!("Bearer {token}"))).await
    };

    let good = token(&issuer.url, json!({"scope": "items/read profile"}));
    let r = jwt(good.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let authorizer = &event_of(&r)["requestContext"]["authorizer"]["jwt"];
    assert_eq!(authorizer["claims"]["sub"], "user-1", "{authorizer}");
    assert_eq!(authorizer["scopes"], json!(["items/read", "profile"]));

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tampered = good.clone();
    tampered.truncate(good.len() - 4);
    tampered.push_str("AAAA");
    let invalid = [
        (
            "expired",
            token(&issuer.url, json!({"scope": "items/read", "exp": now - 60})),
        ),
        (
            "wrong audience",
            token(
                &issuer.url,
                json!({"scope": "items/read", "aud": "someone-else"}),
            ),
        ),
        (
            "wrong issuer",
            token("https://other.example.com", json!({"scope": "items/read"})),
        ),
        ("bad signature", tampered),
        ("malformed", "not-a-jwt".to_owned()),
    ];
    for (what, t) in invalid {
        let r = jwt(t).await;
        assert_eq!(
            (r.status, json_of(&r)),
            (401, json!({"message": "Unauthorized"})),
            "{what}"
        );
        assert!(
            r.header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token")),
            "{what}: {r:?}"
        );
    }
    // A valid token without the route's scope: 403.
    let r = jwt(token(&issuer.url, json!({"scope": "profile"}))).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (403, json!({"message": "Forbidden"}))
    );
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.contains("insufficient_scope"))
    );
    // Only the one good token reached the function.
    assert_eq!(invocations(&logs, "Web"), 1);
}

const WEBSOCKET_TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
Resources:
  Ws:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ws
  Auth:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: auth
  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: socket
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Ws.Arn}/invocations"
  ConnectAuthorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Socket
      Name: token
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Auth.Arn}/invocations"
      IdentitySource: [route.request.querystring.token]
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref ConnectAuthorizer
      Target: !Sub "integrations/${Integration}"
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $default
      Target: !Sub "integrations/${Integration}"
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Socket
      StageName: dev
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_connect_authorizer_refuses_upgrades_and_its_context_reaches_every_route() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};

    let project = TemplateProject::new(
        "authorizers-ws",
        WEBSOCKET_TEMPLATE,
        &[("ws", "fx-ws"), ("auth", "fx-authorizer")],
    );
    let (running, logs) = project.serve().await;
    let addr = running
        .endpoint("Socket", EndpointKind::WebSocket)
        .unwrap_or_else(|| panic!("no Socket in {:?}", running.endpoints))
        .addr;
    let refused = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(WsError::Http(response)) => response.status().as_u16(),
            other => panic!("the upgrade was not refused: {:?}", other.map(|(_, r)| r)),
        }
    };

    // No token: 401 before the authorizer runs; a denying policy: 403; a crash: 500. None of
    // these reaches $connect.
    assert_eq!(refused(format!("ws://{addr}/dev")).await, 401);
    assert_eq!(invocations(&logs, "Auth"), 0);
    assert_eq!(refused(format!("ws://{addr}/dev?token=deny")).await, 403);
    assert_eq!(
        refused(format!("ws://{addr}/dev?token=unauthorized")).await,
        401
    );
    assert_eq!(refused(format!("ws://{addr}/dev?token=crash")).await, 500);
    assert_eq!(invocations(&logs, "Ws"), 0);

    // Allowed: the context is in $connect's event and in every message's.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/dev?token=allow"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    ws.send(Message::text(r#"{"action":"hello"}"#))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for kind in ["CONNECT", "MESSAGE"] {
        let line = logs
            .wait_for(|l| l.starts_with(&format!("Ws: fx-ws {kind} ")))
            .await;
        let json = line.splitn(5, ' ').nth(4).unwrap_or_default();
        let event: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
        let authorizer = &event["requestContext"]["authorizer"];
        assert_eq!(
            authorizer["principalId"], "user-allow",
            "{kind}: {authorizer}"
        );
        assert_eq!(authorizer["user"], "allow", "{kind}: {authorizer}");
    }
    let _ = ws.close(None).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_iam_routes_take_sigv4_signed_requests_only() {
    use coldstart_emulator::{LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY};
    let project = project("iam", "https://issuer.invalid");
    let (running, logs) = project.serve().await;
    let request = |api: &str, kind: EndpointKind, path: &str, secret: Option<&str>| {
        let addr = running
            .endpoint(api, kind)
            .unwrap_or_else(|| panic!("no {api}"))
            .addr;
        let request = http::Request::get(path)
            .header(http::header::HOST, addr.to_string())
            .body(Bytes::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let request = match secret {
            Some(secret) => crate::support::sign_v4(
                request,
                "execute-api",
                aws_sigv4::http_request::SigningSettings::default(),
                secret,
                None,
            ),
            None => request,
        };
        let (parts, body) = request.into_parts();
        crate::support::send(addr, http::Request::from_parts(parts, Full::new(body)))
    };
    let http = EndpointKind::HttpApi;
    let rest = EndpointKind::RestApi;

    // Signed with the local key: the function sees the caller.
    let r = request("Http", http, "/iam", Some(LOCAL_SECRET_ACCESS_KEY)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let iam = &event_of(&r)["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["accessKey"], LOCAL_ACCESS_KEY_ID, "{iam}");
    let r = request("Rest", rest, "/prod/iam", Some(LOCAL_SECRET_ACCESS_KEY)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let identity = &event_of(&r)["requestContext"]["identity"];
    assert_eq!(identity["accessKey"], LOCAL_ACCESS_KEY_ID, "{identity}");
    let before = invocations(&logs, "Web");

    // Unsigned or signed with another secret: 403, as each API kind words it.
    let r = request("Http", http, "/iam", None).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (403, json!({"message": "Forbidden"}))
    );
    let r = request("Rest", rest, "/prod/iam", None).await;
    assert_eq!(
        (r.status, json_of(&r)),
        (403, json!({"message": "Missing Authentication Token"}))
    );
    let r = request("Rest", rest, "/prod/iam", Some("not-the-secret")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    assert_eq!(invocations(&logs, "Web"), before);
    running.stop().await;
}
