//! What a failed invocation reports: an error type and a message.
//!
//! Kept apart from [`Error`](crate::Error) because it travels the other way: it is what the function
//! tells Lambda (posted as `{"errorType","errorMessage"}`), not why the runtime stops. Any
//! `Display` type converts into it, which is what lets a handler return `Result<_, String>`,
//! `Result<_, std::io::Error>`, `Result<_, Box<dyn Error + Send + Sync>>` or its own error type.

use std::fmt::Display;

use coldstart_protocol::ErrorBody;

/// An error as Lambda records it: posted to `/runtime/invocation/{id}/error` (or
/// `/runtime/init/error`) with `error_type` also in the `Lambda-Runtime-Function-Error-Type`
/// header.
///
/// Every `Display` type converts into a `Diagnostic`: the type is the short name of the Rust type
/// (`MyError`, `String`, `Error` for `Box<dyn Error>`), the message its `to_string()`. For a
/// different type name, build one with [`Diagnostic::new`] or write your own `From` impl for a
/// type that does not implement `Display`.
///
/// `Diagnostic` deliberately does not implement `Display` (that would make the blanket conversion
/// overlap with `From<T> for T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Category of the error, e.g. `MyError` or `Runtime.InvalidEventData`.
    pub error_type: String,
    /// Human-readable message.
    pub error_message: String,
}

impl Diagnostic {
    /// A diagnostic with the given type and message.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
        }
    }

    /// The JSON body posted to the Runtime API.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        ErrorBody::new(self.error_type.as_str(), self.error_message.as_str()).to_json()
    }
}

impl<T: Display> From<T> for Diagnostic {
    fn from(error: T) -> Self {
        Self {
            error_type: short_type_name(std::any::type_name::<T>()).to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Smart pointers whose pointee names the error better than the pointer does.
const WRAPPERS: [&str; 3] = ["alloc::boxed::Box<", "alloc::sync::Arc<", "alloc::rc::Rc<"];

/// The last path segment of a type name, without references, `dyn`, generics or trait-object
/// bounds; `Box<dyn Error + Send>` is named after the pointee: `Error`.
fn short_type_name(full: &'static str) -> &'static str {
    let mut name = full.trim();
    loop {
        name = name.trim_start_matches('&');
        name = name.strip_prefix("mut ").unwrap_or(name);
        name = name.strip_prefix("dyn ").unwrap_or(name);
        let unwrapped = WRAPPERS.iter().find_map(|prefix| {
            name.strip_prefix(prefix)
                .and_then(|inner| inner.strip_suffix('>'))
        });
        match unwrapped {
            Some(inner) => name = inner.trim(),
            None => break,
        }
    }
    let base = name.split('<').next().unwrap_or(name);
    let base = base.split(" +").next().unwrap_or(base).trim();
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct MyError;

    impl Display for MyError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("my error happened")
        }
    }

    impl std::error::Error for MyError {}

    #[derive(Debug)]
    struct Generic<T>(T);

    impl<T: Display> Display for Generic<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "generic {}", self.0)
        }
    }

    #[test]
    fn own_error_type_is_named_by_its_short_name() {
        let d = Diagnostic::from(MyError);
        assert_eq!(d, Diagnostic::new("MyError", "my error happened"));
    }

    #[test]
    fn boxed_dyn_error_is_named_error() {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(MyError);
        let d = Diagnostic::from(boxed);
        assert_eq!(d.error_type, "Error");
        assert_eq!(d.error_message, "my error happened");

        let plain: Box<dyn std::error::Error> = "from a str".into();
        assert_eq!(Diagnostic::from(plain).error_type, "Error");
    }

    #[test]
    fn std_types_get_short_names() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such thing");
        assert_eq!(
            Diagnostic::from(io),
            Diagnostic::new("Error", "no such thing")
        );
        assert_eq!(
            Diagnostic::from(String::from("bad input")),
            Diagnostic::new("String", "bad input")
        );
        assert_eq!(Diagnostic::from("oops").error_type, "str");
        let parse = "x".parse::<u32>().err().map(Diagnostic::from);
        assert_eq!(
            parse.map(|d| d.error_type).as_deref(),
            Some("ParseIntError")
        );
    }

    #[test]
    fn generics_and_pointers_are_stripped() {
        assert_eq!(Diagnostic::from(Generic(3)).error_type, "Generic");
        assert_eq!(Diagnostic::from(Generic(3)).error_message, "generic 3");
        assert_eq!(
            Diagnostic::from(std::sync::Arc::new(MyError)).error_type,
            "MyError"
        );
        assert_eq!(Diagnostic::from(Box::new(MyError)).error_type, "MyError");
        assert_eq!(Diagnostic::from(&MyError).error_type, "MyError");
    }

    #[test]
    fn a_diagnostic_converts_into_itself() {
        fn into(d: impl Into<Diagnostic>) -> Diagnostic {
            d.into()
        }
        let d = Diagnostic::new("Custom.Type", "message");
        assert_eq!(into(d.clone()), d);
    }

    #[test]
    fn json_uses_aws_field_names() {
        let json = Diagnostic::new("A", "b").to_json();
        assert_eq!(json, br#"{"errorType":"A","errorMessage":"b"}"#);
    }
}
