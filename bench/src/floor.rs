//! The floor: a bare hyper 1 HTTP/1.1 echo server, the fastest any invoke path over loopback HTTP
//! could answer with this client.
//!
//! It runs on a thread of its own with its own two-worker tokio runtime, so that like the emulator
//! it does not share the client's scheduler (a separate process would add only a context switch
//! the emulator pays too).

use std::net::SocketAddr;
use std::thread;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// Worker threads of the floor server's runtime.
const WORKERS: usize = 2;

/// The running echo server. Dropping it stops the server and joins its thread.
#[derive(Debug)]
pub struct FloorServer {
    /// Where it listens (`127.0.0.1`, an ephemeral port).
    pub addr: SocketAddr,
    /// The server's accept loop holds the receiver; sending (or dropping) stops it.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FloorServer {
    /// Binds `127.0.0.1:0` and serves on a new thread; it accepts connections once this returns.
    pub fn start() -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding the floor")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("floor")
            .enable_all()
            .build()
            .context("the floor's runtime")?;
        let (stop, stopped) = oneshot::channel();
        let thread = thread::Builder::new()
            .name("floor".into())
            .spawn(move || runtime.block_on(serve(listener, stopped)))
            .context("the floor's thread")?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped` fires; open connections end with the runtime.
async fn serve(listener: std::net::TcpListener, mut stopped: oneshot::Receiver<()>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        // Either a new connection or the order to stop (a send or a dropped sender).
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // The client's connect then fails, which the measurement reports.
                Err(_) => return,
            },
            _ = &mut stopped => return,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(
            http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(echo)),
        );
    }
}

/// Answers 200 with the request's body.
async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = request.into_body().collect().await?.to_bytes();
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
