//! Opens many operator WebSocket clients on a running dashboard and reports
//! the frames each received per second: the load side of measure.sh.
//!
//!   OPERATOR_TOKEN=… cargo run --release -p dashboard --example ws_clients -- \
//!       --addr 127.0.0.1:8081 --clients 200 --secs 30

use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: String,
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: String,
    #[arg(long, default_value_t = 100)]
    clients: usize,
    #[arg(long, default_value_t = 30)]
    secs: u64,
}

/// Signs in with a bare HTTP/1.1 request and returns the session token.
async fn session(addr: &str, operator_token: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({"kind": "operator", "token": operator_token}).to_string();
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /api/session HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let json = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(json)?;
    value["token"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("login refused: {json}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let token = session(&args.addr, &args.operator_token).await?;
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let mut request = format!("ws://{}/ws", args.addr).into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("dashboard.v1, bearer.{token}"))?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut frames = 0u64;
            let mut bytes = 0u64;
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline.into(), ws.next()).await {
                if let Message::Text(t) = m {
                    frames += 1;
                    bytes += t.len() as u64;
                }
            }
            (frames as f64 / started.elapsed().as_secs_f64(), bytes)
        }));
    }
    let mut rates = Vec::new();
    let mut bytes = 0;
    for t in tasks {
        let (rate, b) = t.await?;
        rates.push(rate);
        bytes += b;
    }
    rates.sort_by(f64::total_cmp);
    let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
    println!(
        "{} clients: frames/s per client min {:.1} median {:.1} max {:.1} mean {:.1}; {:.1} MB received in all",
        rates.len(),
        rates.first().unwrap_or(&0.0),
        rates.get(rates.len() / 2).unwrap_or(&0.0),
        rates.last().unwrap_or(&0.0),
        mean,
        bytes as f64 / 1e6
    );
    Ok(())
}
