//! coldstart-adapter (work in progress).
fn main() {}
