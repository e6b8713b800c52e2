//! An axum web app (work in progress).
fn main() {}
