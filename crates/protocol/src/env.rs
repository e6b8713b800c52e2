//! Names of the environment variables of a Lambda execution environment.

/// `host:port` of the Runtime API, without scheme or path.
pub const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// The function's name.
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The function's version (`$LATEST`).
pub const FUNCTION_VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
/// The function's memory in MB.
pub const FUNCTION_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// CloudWatch log group, `/aws/lambda/{name}`.
pub const LOG_GROUP_NAME: &str = "AWS_LAMBDA_LOG_GROUP_NAME";
/// CloudWatch log stream of this execution environment.
pub const LOG_STREAM_NAME: &str = "AWS_LAMBDA_LOG_STREAM_NAME";
/// How the environment was initialised (`on-demand`).
pub const INITIALIZATION_TYPE: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";
/// The configured handler string, e.g. `function.handler`.
pub const HANDLER: &str = "_HANDLER";
/// The folder of the function's code.
pub const TASK_ROOT: &str = "LAMBDA_TASK_ROOT";
/// The folder of the runtime.
pub const RUNTIME_DIR: &str = "LAMBDA_RUNTIME_DIR";
/// The region.
pub const REGION: &str = "AWS_REGION";
/// The default region.
pub const DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// The X-Ray trace header of the current invocation; set by the runtime for each invocation.
pub const TRACE_ID: &str = "_X_AMZN_TRACE_ID";
/// Time zone.
pub const TZ: &str = "TZ";
/// `AWS_LAMBDA_LOG_FORMAT`: `JSON` when the function's `LoggingConfig.LogFormat` is JSON.
pub const LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// `AWS_LAMBDA_LOG_LEVEL`: the function's `ApplicationLogLevel` (JSON log format only), for the
/// runtime to skip writing lines below it.
pub const LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";

/// `AWS_EXECUTION_ENV`: the runtime's identifier (runtime-only: not given to extensions).
pub const EXECUTION_ENV: &str = "AWS_EXECUTION_ENV";

/// `AWS_LAMBDA_MAX_CONCURRENCY`: how many invocations a multi-concurrent execution environment
/// (Lambda Managed Instances) runs at once; the runtime keeps that many `next` calls open. Unset
/// for one at a time.
pub const MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";

/// Variables Lambda gives the runtime but not external extensions.
pub const RUNTIME_ONLY: &[&str] = &[
    EXECUTION_ENV,
    LOG_GROUP_NAME,
    LOG_STREAM_NAME,
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    RUNTIME_DIR,
    TASK_ROOT,
    HANDLER,
];

/// `PORT`: the port a web app listens on (a convention of web frameworks and of the web adapter).
pub const PORT: &str = "PORT";
/// `AWS_LWA_PORT`: the port the web adapter forwards to.
pub const LWA_PORT: &str = "AWS_LWA_PORT";
/// `AWS_LWA_READINESS_CHECK_PORT`: the port the web adapter checks readiness on.
pub const LWA_READINESS_CHECK_PORT: &str = "AWS_LWA_READINESS_CHECK_PORT";
