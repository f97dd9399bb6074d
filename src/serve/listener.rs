//! The page's own accept loop, in place of `axum::serve`, for the limits
//! it cannot set: at most `MAX_CONNECTIONS` connections are open at once
//! (past that, new ones wait in the kernel's queue), and a connection that
//! has not sent a whole request head within `HEADER_TIMEOUT` (slow or idle,
//! first request or keep-alive) is closed. Bodies have their own idle
//! timeout (a layer of the router). On shutdown, idle connections close at
//! once and busy ones get a few seconds to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Time to send a request's head, and the most a kept-alive connection
/// stays idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Request heads larger than this are refused (hyper's own limit is
/// about 400 KB).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Each request knows its peer (`ConnectInfo`), for the throttle.
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A closed or timed-out connection is no error of the server's.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}
