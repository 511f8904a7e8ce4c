//! The floor under the decision latency: how long the broker itself takes to
//! acknowledge one message and to hand it to a consumer, at a steady rate,
//! with the same client settings the services use (`acks=all`, a short
//! linger, a consumer group, `fetch.wait.max.ms`).
//!
//!   cargo build --release -p benches --bin broker_latency
//!   target/release/broker_latency --rates 100,1000 --fetch-wait-ms 100,10
//!
//! Prints, per fetch wait and rate: messages, p50/p99/max of the produce
//! acknowledgement (what the API waits for) and of produce → consume (one
//! hop of the pipeline; a decision takes two).

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::kafka::create_topic;
use benches::steady::{at_steady_rate, p50_p99_max_ms};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,
    /// The consumer's `fetch.wait.max.ms` values to try.
    #[arg(long, value_delimiter = ',', default_value = "100,10")]
    fetch_wait_ms: Vec<u32>,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// The producer's `linger.ms`.
    #[arg(long, default_value = "1")]
    linger_ms: String,
    /// More client properties for the consumer and the producer, `k=v;k=v`.
    #[arg(long, default_value = "")]
    client_options: String,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("fetch_wait_ms  rate  messages  ack_p50  ack_p99  ack_max  hop_p50  hop_p99  hop_max  (ms)");
    for &wait in &args.fetch_wait_ms {
        for &rate in &args.rates {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            let topic = format!("brokerlat-{tag}");
            create_topic(&args.brokers, &topic, args.partitions).await?;
            let consumer: StreamConsumer = with_options(
                ClientConfig::new()
                    .set("bootstrap.servers", &args.brokers)
                    .set("group.id", format!("brokerlat-{tag}"))
                    .set("auto.offset.reset", "earliest")
                    .set("enable.auto.commit", "false")
                    .set("fetch.wait.max.ms", wait.to_string())
                    .set("session.timeout.ms", "6000"),
                &args.client_options,
            )
            .create()?;
            consumer.subscribe(&[&topic])?;
            let producer: FutureProducer = with_options(
                ClientConfig::new()
                    .set("bootstrap.servers", &args.brokers)
                    .set("acks", "all")
                    .set("linger.ms", &args.linger_ms),
                &args.client_options,
            )
            .create()?;
            let base = Instant::now();
            let expected = (u64::from(rate) * args.seconds).max(1) as usize;
            // A warm-up message on every partition: once all have arrived
            // the group is joined and every fetch position is known.
            for partition in 0..args.partitions {
                producer
                    .send(
                        FutureRecord::<(), _>::to(&topic).partition(partition).payload(&u64::MAX.to_le_bytes()[..]),
                        Duration::from_secs(5),
                    )
                    .await
                    .map_err(|(e, _)| e)?;
            }
            let warmed = Arc::new(tokio::sync::Notify::new());
            let reader = {
                let warmed = Arc::clone(&warmed);
                let partitions = args.partitions as usize;
                tokio::spawn(async move {
                    let (mut hops, mut warm) = (Vec::with_capacity(expected), 0usize);
                    while hops.len() < expected {
                        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await else {
                            break;
                        };
                        let now = base.elapsed();
                        let Some(sent) = m.payload().and_then(|p| <[u8; 8]>::try_from(p).ok()).map(u64::from_le_bytes)
                        else {
                            continue;
                        };
                        if sent == u64::MAX {
                            warm += 1;
                            if warm == partitions {
                                warmed.notify_one();
                            }
                            continue;
                        }
                        hops.push(now.saturating_sub(Duration::from_nanos(sent)));
                    }
                    hops
                })
            };
            tokio::time::timeout(Duration::from_secs(60), warmed.notified())
                .await
                .map_err(|_| anyhow::anyhow!("the consumer never received the warm-up messages"))?;
            // Each send answers with its acknowledgement's latency.
            let mut pending = Vec::with_capacity(expected);
            at_steady_rate(rate, expected as u64, |sent| {
                let (producer, topic) = (producer.clone(), topic.clone());
                pending.push(tokio::spawn(async move {
                    let t0 = base.elapsed();
                    let stamp = (t0.as_nanos() as u64).to_le_bytes();
                    let key = sent.to_string();
                    let r = producer
                        .send(FutureRecord::to(&topic).key(&key).payload(&stamp[..]), Duration::from_secs(5))
                        .await;
                    r.ok().map(|_| base.elapsed().saturating_sub(t0))
                }));
            })
            .await;
            let mut acks = Vec::with_capacity(expected);
            for p in pending {
                acks.extend(p.await?);
            }
            let mut hops = reader.await?;
            let (a, h) = (p50_p99_max_ms(&mut acks), p50_p99_max_ms(&mut hops));
            println!(
                "{wait:>13}  {rate:>4}  {:>8}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}  {:>7.2}",
                hops.len(),
                a[0],
                a[1],
                a[2],
                h[0],
                h[1],
                h[2]
            );
        }
    }
    Ok(())
}

/// `config` with `--client-options` applied last, so they win.
fn with_options<'c>(config: &'c mut ClientConfig, options: &str) -> &'c mut ClientConfig {
    for (k, v) in options.split(';').filter_map(|kv| kv.split_once('=')) {
        config.set(k.trim(), v.trim());
    }
    config
}
