//! The HTTP server of every service (the processor's and the notifier's
//! internal endpoints with [`HttpLimits::INTERNAL`]), with the limits that keep
//! one client from exhausting it:
//!
//! * `idle_timeout`: a connection must send a complete request head within
//!   this time, on a new connection and between keep-alive requests; idle
//!   or slow-header (slowloris) connections are closed.
//! * `body_timeout`: a request body must arrive completely within this time,
//!   or reading it fails (the handler answers 4xx and the connection closes).
//! * `request_timeout`: a request that has not been answered by then gets a
//!   503 (what a handler handed to its own task, such as an accepted
//!   transaction, still completes).
//! * `max_concurrent_requests`: requests served at once by the process;
//!   more wait for a slot (bounded by the request timeout of those running).
//!
//! WebSocket connections leave all four once upgraded; the dashboard caps
//! them itself. HTTP/1.1 only (what ingress controllers and load balancers
//! speak to a backend).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody, TimeoutLayer};

/// Longest wait, on shutdown, for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

impl HttpLimits {
    /// For the internal endpoints of the processor and the notifier
    /// (probes, `/metrics`): few callers, small answers.
    pub const INTERNAL: HttpLimits = HttpLimits {
        idle_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_concurrent_requests: 64,
    };

    pub fn validate(&self) -> Result<(), String> {
        if self.idle_timeout.is_zero() || self.body_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err("HTTP timeouts must be positive".into());
        }
        if self.max_concurrent_requests == 0 {
            return Err("the concurrent request limit must be positive".into());
        }
        Ok(())
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// the requests in flight finish (30 s at most). Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout).keep_alive(true);
    let concurrency = GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests);
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
            .layer(concurrency.clone())
            .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
            .map_request(move |mut req: Request<TimeoutBody<Incoming>>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            })
            .service(router.clone());
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                _ = stop.cancelled() => {
                    // Finish the request in flight, take no new one.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait()).await.is_err() {
        tracing::warn!("requests still running after the drain timeout; stopping anyway");
    }
    Ok(())
}

/// The peer of a request served by [`serve`] (or by axum's
/// `into_make_service_with_connect_info`); none when a router is driven
/// directly.
pub fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
