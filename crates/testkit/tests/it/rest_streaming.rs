//! REST API response streaming (`ResponseTransferMode: STREAM` on a Lambda proxy integration):
//! the function's HTTP-integration stream reaches the client chunk by chunk, while the function
//! still writes; set in `coldstart.toml`, a SAM `Api` event or an `AWS::ApiGateway::Method`.

use bytes::Bytes;
use coldstart_emulator::{HttpApi, PayloadVersion, RouteKey, Router, serve_http_api};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use coldstart_stack::{EndpointKind, TemplateOptions};

use crate::streaming::Gate;
use crate::support::{Harness, PATIENCE, fixture, function};
use crate::template::{Project, serve};

#[tokio::test]
async fn a_streamed_rest_route_sends_chunks_before_the_function_ends() {
    let h = Harness::start(vec![function("stream", fixture("fx-stream"))]).await;
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let key = "GET /chat";
    let mut api = HttpApi::new(
        "rest",
        PayloadVersion::V1,
        Router::new(vec![(
            RouteKey::parse(key).unwrap_or_else(|e| panic!("{e}")),
            "stream".to_owned(),
        )]),
    );
    api.rest = true;
    api.streamed.insert(key.to_owned());
    tokio::spawn(serve_http_api(
        h.emulator.clone(),
        api,
        listener,
        stop.clone(),
    ));

    first_chunk_before_the_end(addr, "/chat", "rest").await;
    stop.cancel();
    h.stop().await;
}

/// A SAM `Api` event and a CloudFormation method, each with `ResponseTransferMode: STREAM`.
const TEMPLATE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 10
Resources:
  Stream:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: stream
      Events:
        Chat:
          Type: Api
          Properties:
            Path: /sam
            Method: get
            ResponseTransferMode: STREAM
  Api:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Name: chat
  Chat:
    Type: AWS::ApiGateway::Resource
    Properties:
      RestApiId: !Ref Api
      ParentId: !GetAtt Api.RootResourceId
      PathPart: chat
  ChatGet:
    Type: AWS::ApiGateway::Method
    Properties:
      RestApiId: !Ref Api
      ResourceId: !Ref Chat
      HttpMethod: GET
      AuthorizationType: NONE
      Integration:
        Type: AWS_PROXY
        IntegrationHttpMethod: POST
        ResponseTransferMode: STREAM
        Uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${Stream.Arn}/response-streaming-invocations
  Deployment:
    Type: AWS::ApiGateway::Deployment
    DependsOn: ChatGet
    Properties:
      RestApiId: !Ref Api
      StageName: live
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_rest_routes_from_a_template_send_chunks_before_the_function_ends() {
    let project = Project::with(
        "rest-streaming",
        TEMPLATE,
        "template.yaml",
        &[("stream", "fx-stream")],
    );
    let (running, _logs) = serve(&project, &TemplateOptions::default()).await;
    let sam = running
        .endpoint("ServerlessRestApi", EndpointKind::RestApi)
        .unwrap_or_else(|| panic!("no SAM REST API in {:?}", running.endpoints));
    first_chunk_before_the_end(sam.addr, "/Prod/sam", "rest-sam").await;
    let cfn = running
        .endpoint("Api", EndpointKind::RestApi)
        .unwrap_or_else(|| panic!("no CloudFormation REST API in {:?}", running.endpoints));
    first_chunk_before_the_end(cfn.addr, "/live/chat", "rest-cfn").await;
    running.stop().await;
}

/// `GET path` of the streaming fixture: its first line arrives while the function waits at a
/// gate (before it writes the rest), the rest once the gate opens.
async fn first_chunk_before_the_end(addr: std::net::SocketAddr, path: &str, gate_name: &str) {
    let gate = Gate::new(gate_name);
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let request = http::Request::get(format!("{path}?op=lines&n=3&gate={}", gate.path()))
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .unwrap_or_else(|_| panic!("no response head"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"text/plain"[..])
    );
    let mut body = response.into_body();
    // Line 1 arrives while the function waits at the gate, before it writes line 2.
    let first = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .unwrap_or_else(|_| panic!("no first chunk while the function waits"));
    let first = first
        .and_then(Result::ok)
        .and_then(|f| f.into_data().ok())
        .unwrap_or_default();
    assert_eq!(first, Bytes::from_static(b"line 1\n"));
    gate.open().await;
    let rest = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .unwrap_or_else(|_| panic!("the stream never ended"))
        .unwrap_or_else(|e| panic!("{e}"))
        .to_bytes();
    assert_eq!(rest, Bytes::from_static(b"line 2\nline 3\n"));
}
