//! A SAM template served as `coldstart up` serves it (through `coldstart-stack`), driven by the
//! AWS SDK for Rust, HTTP and WebSocket clients: parameters and their overrides, mappings,
//! conditions, globals, intrinsics, Function URLs, HTTP and REST API events, a WebSocket API from
//! `AWS::ApiGatewayV2` resources, local endpoints in the environment, functions calling
//! functions, outputs, and the resources that are not emulated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use coldstart_stack::{EndpointKind, Running, StartOptions, TemplateOptions};

use crate::support::{Logs, PATIENCE, fixture, send};

const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: every piece of a template that coldstart serves

Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Greeting:
    Type: String
    Default: hello

Mappings:
  Sizes:
    dev: { Memory: 256 }
    prod: { Memory: 1024 }

Conditions:
  IsProd: !Equals [!Ref Stage, prod]

Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Timeout: 5
    Environment:
      Variables:
        GREETING: !Ref Greeting
        SOCKET_URL: !Sub "https://${Socket}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
        TOPIC: !Ref Topic

Resources:
  Env:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: env
      MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]
      Environment:
        Variables:
          STAGE_NAME: !If [IsProd, production, development]
          SIBLING_ARN: !GetAtt Http.Arn
          PARTS: !Join ["-", [!Select [1, !Split [",", "a,b,c"]], !Ref "AWS::Region"]]
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: BUFFERED
      Events:
        Named:
          Type: HttpApi
          Properties:
            Path: /env/{name}
            Method: get

  Http:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: http
      Events:
        Item:
          Type: Api
          Properties:
            Path: /items/{id}
            Method: post

  ProdOnly:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties:
      CodeUri: http

  Ws:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ws

  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: socket
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: "$request.body.action"

  SocketIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Ws.Arn}/invocations"

  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $connect
      Target: !Sub "integrations/${SocketIntegration}"

  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $default
      RouteResponseSelectionExpression: $default
      Target: !Join ["/", [integrations, !Ref SocketIntegration]]

  SocketStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Socket
      StageName: !Ref Stage

  Topic:
    Type: AWS::SNS::Topic

Outputs:
  EnvUrl:
    Value: !GetAtt EnvUrl.FunctionUrl
  SocketUrl:
    Value: !Sub "wss://${Socket}.execute-api.${AWS::Region}.amazonaws.com/${Stage}"
  ProdOnlyName:
    Condition: IsProd
    Value: !Ref ProdOnly
"#;

/// A template folder: `template.yaml` and one code folder per function, each with its
/// `bootstrap` (a fixture binary); removed on drop.
pub(crate) struct Project(PathBuf);

impl Project {
    fn new(template: &str, file: &str) -> Project {
        Project::with(
            &file.replace('.', "-"),
            template,
            file,
            &[("env", "fx-env"), ("http", "fx-http"), ("ws", "fx-ws")],
        )
    }

    /// The project `name` (unique among the tests) with code folders `(folder, fixture)`.
    pub(crate) fn with(name: &str, template: &str, file: &str, code: &[(&str, &str)]) -> Project {
        let dir =
            std::env::temp_dir().join(format!("coldstart-template-{}-{name}", std::process::id(),));
        let _ = std::fs::remove_dir_all(&dir);
        for &(folder, bin) in code {
            std::fs::create_dir_all(dir.join(folder)).unwrap_or_else(|e| panic!("{e}"));
            std::os::unix::fs::symlink(fixture(bin), dir.join(folder).join("bootstrap"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(dir.join(file), template).unwrap_or_else(|e| panic!("{e}"));
        Project(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the project's stack (found as `up` finds it) and serves it on free ports.
pub(crate) async fn serve(project: &Project, options: &TemplateOptions) -> (Running, Arc<Logs>) {
    let source = coldstart_stack::Source::find(project.path()).unwrap_or_else(|e| panic!("{e}"));
    let stack = source.load(options).unwrap_or_else(|e| panic!("{e}"));
    let logs = Arc::new(Logs::default());
    let mut start = StartOptions::new(logs.clone());
    start.listen = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
    start.freeze = false;
    let running = coldstart_stack::start(&stack, start)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    (running, logs)
}

fn sdk(running: &Running) -> aws_sdk_lambda::Client {
    let invoke = running
        .endpoint(coldstart_stack::Endpoint::INVOKE_API, EndpointKind::Invoke)
        .unwrap_or_else(|| panic!("no Invoke API"));
    coldstart_test::sdk_client(invoke.addr)
}

async fn invoke(client: &aws_sdk_lambda::Client, name: &str, payload: &str) -> Value {
    let out = client
        .invoke()
        .function_name(name)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .unwrap_or_else(|e| panic!("invoke {name}: {e:?}"));
    assert_eq!(out.function_error(), None, "{name}: {:?}", out.payload());
    let bytes = out
        .payload()
        .map(|b| b.as_ref().to_vec())
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn get(uri: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(uri)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sam_template_serves_every_front_door_with_local_endpoints() {
    let project = Project::new(TEMPLATE, "template.yaml");
    let options = TemplateOptions {
        parameter_overrides: coldstart_stack::template::parse_parameter_overrides(&[
            "Greeting=howdy".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("{e}")),
        port_base: 0,
        ..TemplateOptions::default()
    };
    let (running, _logs) = serve(&project, &options).await;
    let client = sdk(&running);

    // The environment: parameters (overridden), mappings, conditions, globals merged, intrinsics,
    // the WebSocket API's AWS URL rewritten to the local one, and the local Invoke API.
    let socket = running
        .endpoint("Socket", EndpointKind::WebSocket)
        .unwrap_or_else(|| panic!("no WebSocket API in {:?}", running.endpoints));
    let answer = invoke(&client, "Env", r#"{"k":1}"#).await;
    let env = &answer["env"];
    assert_eq!(env["GREETING"], "howdy");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["STAGE_NAME"], "development");
    assert_eq!(env["PARTS"], "b-us-east-1");
    assert_eq!(
        env["SIBLING_ARN"],
        "arn:aws:lambda:us-east-1:123456789012:function:Http"
    );
    assert_eq!(
        env["SOCKET_URL"],
        format!("http://{}/dev", socket.addr).as_str()
    );
    let invoke_api = running
        .endpoint(coldstart_stack::Endpoint::INVOKE_API, EndpointKind::Invoke)
        .map(|e| e.addr)
        .unwrap_or_else(|| panic!("no Invoke API"));
    assert_eq!(
        env["AWS_ENDPOINT_URL_LAMBDA"],
        format!("http://{invoke_api}").as_str()
    );
    assert_eq!(env["AWS_SAM_LOCAL"], "true");
    assert!(env["TOPIC"].as_str().is_some_and(|t| !t.is_empty()));

    // A function calls its sibling through the local Invoke API, as the SDK inside it would.
    let answer = invoke(
        &client,
        "Env",
        r#"{"invoke":"Http","payload":{"from":"Env"}}"#,
    )
    .await;
    assert_eq!(answer["event"]["from"], "Env", "{answer}");

    // The resource whose condition is false does not exist.
    let missing = client
        .invoke()
        .function_name("ProdOnly")
        .send()
        .await
        .err()
        .and_then(|e| {
            e.into_service_error()
                .is_resource_not_found_exception()
                .then_some(())
        });
    assert!(
        missing.is_some(),
        "ProdOnly is served although IsProd is false"
    );

    // The Function URL, the HTTP API route (payload 2.0) and the REST API route (1.0, stage Prod).
    let url = running
        .endpoint("Env", EndpointKind::Url)
        .unwrap_or_else(|| panic!("no Function URL"));
    let event = send(url.addr, get("/some/path?x=1")).await.json();
    assert_eq!(event["event"]["rawPath"], "/some/path");
    let http_api = running
        .endpoint("ServerlessHttpApi", EndpointKind::HttpApi)
        .unwrap_or_else(|| panic!("no HTTP API in {:?}", running.endpoints));
    let event = send(http_api.addr, get("/env/world")).await.json();
    assert_eq!(event["event"]["routeKey"], "GET /env/{name}");
    assert_eq!(event["event"]["pathParameters"]["name"], "world");
    let rest = running
        .endpoint("ServerlessRestApi", EndpointKind::RestApi)
        .unwrap_or_else(|| panic!("no REST API in {:?}", running.endpoints));
    let post = http::Request::post("/Prod/items/42")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = send(rest.addr, post).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let event = answer.json();
    assert_eq!(event["event"]["resource"], "/items/{id}");
    assert_eq!(event["event"]["pathParameters"]["id"], "42");

    // The WebSocket API at its stage, with its two-way $default route.
    let (mut ws, _) = tokio_tungstenite::connect_async(socket.url.as_str())
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.url));
    ws.send(Message::text("hi"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap_or_else(|_| panic!("no reply"))
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("closed"));
    assert_eq!(reply.to_text().unwrap_or_default(), "default: hi");
    let _ = ws.close(None).await;

    // Outputs with local values; the one whose condition is false is not there.
    let outputs: Vec<(&str, &str)> = running
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_str()))
        .collect();
    assert!(
        outputs.contains(&("EnvUrl", format!("http://{}/", url.addr).as_str())),
        "{outputs:?}"
    );
    assert!(
        outputs.contains(&("SocketUrl", format!("ws://{}/dev", socket.addr).as_str())),
        "{outputs:?}"
    );
    assert!(!outputs.iter().any(|(name, _)| *name == "ProdOnlyName"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_template_is_found_without_flags_and_its_not_emulated_resources_listed() {
    let template = r#"{
  "Transform": "AWS::Serverless-2016-10-31",
  "Resources": {
    "Echo": {
      "Type": "AWS::Serverless::Function",
      "Properties": {"CodeUri": "env", "Runtime": "provided.al2", "Handler": "x"}
    },
    "Queue": {"Type": "AWS::SQS::Queue"},
    "Py": {
      "Type": "AWS::Serverless::Function",
      "Properties": {"CodeUri": "env", "Runtime": "python3.12", "Handler": "app.handler"}
    }
  }
}"#;
    let project = Project::new(template, "template.json");
    let source = coldstart_stack::Source::find(project.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(source, coldstart_stack::Source::Template(_)));
    let stack = source
        .load(&TemplateOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stack
            .not_emulated
            .contains(&("Queue".to_owned(), "AWS::SQS::Queue".to_owned())),
        "{:?}",
        stack.not_emulated
    );
    assert!(
        stack
            .notices
            .iter()
            .any(|n| n.contains("Py") && n.contains("python3.12")),
        "{:?}",
        stack.notices
    );
    let (running, _logs) = serve(
        &project,
        &TemplateOptions {
            port_base: 0,
            ..TemplateOptions::default()
        },
    )
    .await;
    let answer = invoke(&sdk(&running), "Echo", r#"{"json":true}"#).await;
    assert_eq!(answer["event"]["json"], true);
    assert_eq!(answer["env"]["_HANDLER"], "x");
    running.stop().await;
}

const LAYERED: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Base:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: base
  Top:
    Type: AWS::Lambda::LayerVersion
    Properties:
      Content: top
  Layered:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: env
      Runtime: provided.al2023
      Handler: bootstrap
      Layers: [!Ref Base, !Ref Top]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_are_merged_in_order_into_opt_and_their_extensions_start() {
    let project = Project::new(LAYERED, "template.yaml");
    let write = |path: &str, text: &str| {
        let path = project.path().join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    };
    write("base/note.txt", "base");
    write("base/lib/libbase.so", "");
    write("top/note.txt", "top wins");
    write("top/bin/tool", "#!/bin/sh\n");
    std::fs::create_dir_all(project.path().join("base/extensions"))
        .unwrap_or_else(|e| panic!("{e}"));
    // A real extension (it registers, subscribes to the Telemetry API and waits for events):
    // init completes only once it has registered, so an answer proves it started.
    std::os::unix::fs::symlink(
        fixture("fx-telemetry"),
        project.path().join("base/extensions/fx-telemetry"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (running, _logs) = serve(&project, &TemplateOptions::default()).await;
    let client = sdk(&running);

    // Where the platform allows it, the layers are at a real, read-only /opt; elsewhere the
    // environment points at the merged folder.
    let opt = if coldstart_emulator::opt_mount_available() {
        "/opt".to_owned()
    } else {
        project
            .path()
            .join(".coldstart/opt/Layered")
            .display()
            .to_string()
    };
    let note = invoke(
        &client,
        "Layered",
        &format!(r#"{{"read":"{opt}/note.txt"}}"#),
    )
    .await;
    assert_eq!(note["content"], "top wins", "the later layer wins");
    let listed = invoke(&client, "Layered", &format!(r#"{{"list":"{opt}"}}"#)).await;
    assert_eq!(
        listed["names"],
        serde_json::json!(["bin", "extensions", "lib", "note.txt"]),
        "only the layers' files, merged"
    );
    let env = invoke(&client, "Layered", "{}").await;
    let path = env["env"]["PATH"].as_str().unwrap_or_default();
    assert!(path.starts_with(&format!("{opt}/bin:")), "PATH: {path}");
    let lib = env["env"]["LD_LIBRARY_PATH"].as_str().unwrap_or_default();
    assert!(
        lib.starts_with(&format!("{opt}/lib")),
        "LD_LIBRARY_PATH: {lib}"
    );
    running.stop().await;
}
