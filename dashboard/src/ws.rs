//! The WebSocket stream: one task per client, reading the latest frame of
//! its view from a `watch` channel. It never queues: while a client is busy
//! the channel keeps only the newest frame, and the gap is counted as
//! dropped frames.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::watch;

use crate::auth::{check_binding, ClientIp, Session};
use crate::error::ApiError;
use crate::frame::Frame;
use crate::metrics::Metrics;
use crate::session::Claims;
use crate::state::AppState;
use crate::ws_slots::WsSlot;

/// The sub-protocol the server speaks; browsers send it with the token.
pub const PROTOCOL: &str = "dashboard.v1";
/// A client that takes longer than this to accept one frame is cut off.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pings keep idle proxies from closing the connection.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Close code when the session token expires or is revoked; the page renews
/// (or, revoked, returns to the sign-in) and reconnects.
pub const CLOSE_SESSION_EXPIRED: u16 = 4001;

/// Checks the session, then takes a stream slot (per session, per client
/// address, in total; 429 `too_many_streams` beyond) for the connection's
/// lifetime.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let slot = state.ws_slots.acquire(&session.0.sid, client)?;
    let rx = match session.merchant() {
        Some(merchant) => state.hub.subscribe_merchant(merchant),
        None => state.hub.subscribe_operator(),
    };
    let expires_in =
        Duration::from_secs((session.0.exp - time::OffsetDateTime::now_utc().unix_timestamp()).max(0) as u64);
    let stream = Stream { rx, expires_in, state, claims: session.0, _slot: slot };
    Ok(ws.protocols([PROTOCOL]).max_message_size(4096).on_upgrade(move |socket| serve(socket, stream)))
}

/// What one open stream holds.
struct Stream {
    rx: watch::Receiver<Arc<Frame>>,
    expires_in: Duration,
    state: AppState,
    claims: Claims,
    /// Given back when the stream ends.
    _slot: WsSlot,
}

/// Decrements the client gauge however the connection ends.
struct ClientGuard(Arc<Metrics>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.ws_clients.dec();
    }
}

async fn serve(socket: WebSocket, stream: Stream) {
    let Stream { mut rx, expires_in, state, claims, _slot } = stream;
    let metrics = Arc::clone(&state.metrics);
    let shutdown = state.shutdown.clone();
    metrics.ws_clients.inc();
    let _guard = ClientGuard(Arc::clone(&metrics));
    let (mut sink, mut stream) = socket.split();
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    // A merchant's secret may rotate or the account be disabled while the
    // stream is open: re-check now and then.
    let mut recheck = tokio::time::interval(state.session_revalidate);
    recheck.reset();
    let mut last_seq = 0u64;
    // The current frame, if any, goes out at once: a new client needs no wait.
    rx.mark_changed();
    let close = loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    break Some((1001, "shutting down"));
                }
                let frame = Arc::clone(&rx.borrow_and_update());
                if frame.seq == 0 || frame.seq == last_seq {
                    continue;
                }
                if last_seq != 0 && frame.seq > last_seq + 1 {
                    metrics.ws_frames_dropped.inc_by(frame.seq - last_seq - 1);
                }
                last_seq = frame.seq;
                match tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Text(frame.text.clone()))).await {
                    Ok(Ok(())) => metrics.ws_frames_sent.inc(),
                    Ok(Err(_)) => break None,
                    Err(_) => {
                        // The frame in flight and every one published while
                        // it was stuck never reached this client.
                        let skipped = rx.borrow().seq.saturating_sub(last_seq) + 1;
                        metrics.ws_frames_dropped.inc_by(skipped);
                        tracing::info!(skipped, "websocket client too slow; disconnecting");
                        break None;
                    }
                }
            }
            incoming = stream.next() => match incoming {
                // Pongs are answered by the library; text from the client is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = &mut expiry => break Some((CLOSE_SESSION_EXPIRED, "session expired")),
            _ = recheck.tick() => {
                if let Err(e) = check_binding(&state, &claims).await {
                    if matches!(e, ApiError::Unauthenticated) {
                        break Some((CLOSE_SESSION_EXPIRED, "session revoked"));
                    }
                }
            }
            _ = shutdown.cancelled() => break Some((1001, "shutting down")),
        }
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
    }
}
