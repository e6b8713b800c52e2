//! End-to-end tests: real bootstraps under the emulator, called by real clients, on loopback.

mod api_settings;
mod async_invoke;
mod async_store;
mod authorizers;
mod concurrency;
mod extensions;
mod faults;
mod function_url_auth;
mod gateway;
mod rest_streaming;
mod runtime_api;
mod runtimes;
mod sdk;
mod streaming;
mod support;
mod telemetry;
mod template;
mod websocket;
