//! The server's concurrency limit and overall request timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use service_runtime::http_server::{serve, HttpLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

async fn status_of(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_owned()
}

async fn start(router: Router, limits: HttpLimits) -> (u16, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let handle = tokio::spawn(async move { serve(listener, router, limits, token).await.unwrap() });
    (port, stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_wait_and_slow_ones_time_out() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (a, b) = (Arc::clone(&in_flight), Arc::clone(&most));
    let router = Router::new()
        .route(
            "/work",
            get(move || {
                let (in_flight, most) = (Arc::clone(&a), Arc::clone(&b));
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    "done"
                }
            }),
        )
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        );
    let limits = HttpLimits {
        idle_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        max_concurrent_requests: 2,
    };
    let (port, stop, handle) = start(router, limits).await;
    let requests: Vec<_> = (0..6).map(|_| tokio::spawn(status_of(port, "/work"))).collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), "HTTP/1.1 200 OK");
    }
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "never more than the limit at once: {most}");
    // A handler that never answers: 503 after the request timeout.
    assert_eq!(status_of(port, "/stuck").await, "HTTP/1.1 503 Service Unavailable");
    stop.cancel();
    handle.await.unwrap();
}
