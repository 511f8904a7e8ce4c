//! A client that stops reading misses frames and is cut off; the others
//! keep their ten frames a second.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_skips_frames_and_does_not_hold_back_the_others() {
    let topic = create_topic(1).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("accounts.db").display());
    let app = spawn(config(&topic, &db)).await;
    let token = operator_token(app.port).await;
    let producer = producer();
    let mut healthy = connect(app.port, &token).await.unwrap();
    warm_up(&producer, &topic, &mut healthy, "shop-slow").await;

    // A tiny receive window and no reads: the server's writes to it block.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(([127, 0, 0, 1], app.port).into()).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{}/ws", app.port).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("dashboard.v1, bearer.{token}")).unwrap());
    let (stalled, _) = tokio_tungstenite::client_async(request, stream).await.unwrap();
    assert_eq!(metric(app.port, "dashboard_ws_clients").await, 2.0);

    // Traffic, so every tick has a new frame (and full 50-row tables).
    let traffic = tokio::spawn({
        let topic = topic.clone();
        async move {
            for round in 0..150 {
                let batch: Vec<_> =
                    (0..100).map(|i| result(&format!("slow-{round}-{i}"), "shop-slow", 700, "")).collect();
                produce(&producer, &topic, &batch).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    // The healthy client keeps receiving while the stalled one is stuck,
    // until the server gives up on the stalled one.
    let started = Instant::now();
    let mut frames = 0u32;
    let mut dropped = 0.0;
    let mut clients = 2.0;
    while started.elapsed() < Duration::from_secs(25) {
        if next_frame(&mut healthy, Duration::from_secs(2)).await.is_some() {
            frames += 1;
        }
        dropped = metric(app.port, "dashboard_ws_frames_dropped_total").await;
        clients = metric(app.port, "dashboard_ws_clients").await;
        if dropped > 0.0 && clients == 1.0 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("healthy client: {frames} frames in {elapsed:.1} s; dropped for the stalled one: {dropped}");
    assert!(dropped > 0.0, "the stalled client's frames were skipped, not queued");
    assert_eq!(clients, 1.0, "the stalled client was disconnected");
    assert!(f64::from(frames) >= elapsed * 3.0, "the healthy client was held back: {frames} frames in {elapsed:.1} s");
    assert!(f64::from(frames) <= elapsed * 10.0 + 2.0);
    traffic.abort();
    drop(stalled);
    app.stop().await;
}
