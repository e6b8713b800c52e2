//! The stack model of coldstart, its two readers, builds, and a running stack.
//!
//! A [`Stack`] is everything `coldstart up` serves: functions with their settings and builds,
//! layers, Function URLs, HTTP/REST APIs, WebSocket APIs, tables and outputs. It is read from a
//! `coldstart.toml` ([`config::load`]) or a SAM/CloudFormation template ([`template::load`]).
//!
//! # Layout
//! - [`model`]: the [`Stack`] and its parts.
//! - [`config`]: the `coldstart.toml` reader.
//! - [`template`]: the SAM/CloudFormation template reader.
//! - [`error`]: what can go wrong, located in the user's file.

pub mod config;
pub mod error;
pub mod model;
pub mod template;

pub use error::{Error, Location};
pub use model::{
    Build, FunctionSpec, HttpApiSpec, IndexSpec, LayerSpec, OutputSpec, Stack, TableSpec, UrlSpec,
    WebSocketApiSpec,
};
pub use template::TemplateOptions;
