//! The function's bootstrap: the handler of the library, under the Runtime API.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), coldstart_runtime::Error> {
    coldstart_runtime::run(outside_hello::greet).await
}
