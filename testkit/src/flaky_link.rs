//! A TCP link between clients and a broker that can lose the broker's
//! answers while still delivering the clients' requests: the broker stores
//! a produced message but the producer never hears so. This is the unclear
//! failure (a delivery report that does not come in time) that a retry must
//! not turn into a second transaction. It can also cut the broker off
//! entirely (a broker outage as its clients see it) and heal again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct FlakyLink {
    port: u16,
    lose_answers: Arc<AtomicBool>,
    /// While set, every connection is refused: the broker is unreachable.
    down: Arc<AtomicBool>,
    /// Cancelled to cut every open connection; replaced by a fresh one.
    connections: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl FlakyLink {
    /// Listens on `port`, forwarding to `upstream`.
    pub async fn start(port: u16, upstream: String) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("link port free");
        let link = FlakyLink {
            port,
            lose_answers: Arc::new(AtomicBool::new(false)),
            down: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(CancellationToken::new())),
            stop: CancellationToken::new(),
        };
        let (lose, down, connections, stop) =
            (link.lose_answers.clone(), link.down.clone(), link.connections.clone(), link.stop.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                };
                if down.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(broker) = TcpStream::connect(&upstream).await else { continue };
                let cut = connections.lock().unwrap().clone();
                tokio::spawn(forward(client, broker, lose.clone(), cut));
            }
        });
        link
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// From now on the broker's answers are dropped; requests still pass.
    pub fn lose_answers(&self) {
        self.lose_answers.store(true, Ordering::SeqCst);
    }

    /// Cuts every open connection and refuses new ones until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cut_connections();
    }

    /// Cuts every open connection (their request/answer streams are out of
    /// step now) and forwards both ways again on new ones.
    pub fn heal(&self) {
        self.cut_connections();
        self.lose_answers.store(false, Ordering::SeqCst);
        self.down.store(false, Ordering::SeqCst);
    }

    fn cut_connections(&self) {
        let mut current = self.connections.lock().unwrap();
        current.cancel();
        *current = CancellationToken::new();
    }
}

impl Drop for FlakyLink {
    fn drop(&mut self) {
        self.stop.cancel();
        self.connections.lock().unwrap().cancel();
    }
}

async fn forward(client: TcpStream, broker: TcpStream, lose: Arc<AtomicBool>, cut: CancellationToken) {
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    tokio::select! {
        _ = cut.cancelled() => {}
        _ = pump(client_read, broker_write, || false) => {}
        _ = pump(broker_read, client_write, || lose.load(Ordering::SeqCst)) => {}
    }
}

/// Copies `from` to `to` until either side closes, dropping what arrives
/// while `dropping()` says so.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dropping: impl Fn() -> bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) if dropping() => continue,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
