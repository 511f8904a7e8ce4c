//! Load generator for the dashboard: publishes realistic `transactions_result`
//! messages at a target rate (or as fast as the broker takes them).
//!
//!   cargo run --release -p dashboard --example produce_results -- \
//!       --topic transactions_result --rate 50000 --duration-secs 30
//!
//! `--create-topic N` creates the topic with N partitions first (the local
//! broker does not auto-create topics). Prints the rate achieved.

use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use transaction_model::{Amount, CardBrand, MaskedCard, RejectionReason, ResultMessage, Status};

#[derive(Parser)]
struct Args {
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "RESULTS_TOPIC", default_value = "transactions_result")]
    topic: String,
    /// Results per second; 0 means as fast as possible.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Stop after this long; 0 means until killed.
    #[arg(long, default_value_t = 0)]
    duration_secs: u64,
    /// Merchants the results are spread over.
    #[arg(long, value_delimiter = ',', default_value = "shop-a,shop-b,shop-c,shop-d,shop-e")]
    merchants: Vec<String>,
    /// Create the topic with this many partitions first.
    #[arg(long)]
    create_topic: Option<i32>,
    /// Only create the topic (with --create-topic), produce nothing.
    #[arg(long)]
    create_only: bool,
}

const CARDS: [(&str, CardBrand); 4] = [
    ("4111111111111111", CardBrand::Visa),
    ("5555555555554444", CardBrand::Mastercard),
    ("378282246310005", CardBrand::Amex),
    ("6011111111111117", CardBrand::Discover),
];

fn result(rng: &mut impl Rng, merchant: &str) -> ResultMessage {
    let (card, brand) = CARDS[rng.gen_range(0..CARDS.len())];
    let cents = rng.gen_range(100..60_000);
    let reason =
        (rng.gen_range(0..100) >= 78).then(|| RejectionReason::ALL[rng.gen_range(0..RejectionReason::ALL.len())]);
    let now = time::OffsetDateTime::now_utc();
    ResultMessage {
        id: uuid::Uuid::now_v7().to_string(),
        status: if reason.is_some() { Status::Rejected } else { Status::Approved },
        error_message: reason.map(|r| r.message().to_owned()).unwrap_or_default(),
        account_id: Some(merchant.to_owned()),
        amount_cents: Some(cents),
        amount: Some(Amount::from_cents(cents).to_string()),
        card_brand: Some(brand),
        card_masked: MaskedCard::from_untrusted(card),
        created_at: now,
        processed_at: now,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(partitions) = args.create_topic {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &args.brokers).create()?;
        let topic = [NewTopic::new(&args.topic, partitions, TopicReplication::Fixed(1))];
        for r in admin.create_topics(&topic, &AdminOptions::new()).await? {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => anyhow::bail!("creating {t}: {e}"),
            }
        }
        eprintln!("topic {} ready", args.topic);
    }
    if args.create_only {
        return Ok(());
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let stop_at = (args.duration_secs > 0).then(|| started + Duration::from_secs(args.duration_secs));
    let mut sent: u64 = 0;
    let mut last_report = started;
    let mut reported = 0u64;
    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t) {
            break;
        }
        // How many should be out by now at the target rate (a burst of a
        // few milliseconds' worth at a time).
        let target =
            if args.rate == 0 { sent + 1000 } else { ((now - started).as_secs_f64() * args.rate as f64) as u64 };
        while sent < target {
            let merchant = &args.merchants[(sent as usize) % args.merchants.len()];
            let r = result(&mut rng, merchant);
            let payload = r.to_json()?;
            match producer.send(BaseRecord::to(&args.topic).key(&r.id).payload(&payload)) {
                Ok(()) => sent += 1,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => anyhow::bail!("produce: {e}"),
            }
        }
        if now - last_report >= Duration::from_secs(5) {
            let rate = (sent - reported) as f64 / (now - last_report).as_secs_f64();
            eprintln!("produced {sent} ({rate:.0}/s over the last 5 s)");
            last_report = now;
            reported = sent;
        }
        if args.rate > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    producer.flush(Duration::from_secs(30))?;
    let secs = started.elapsed().as_secs_f64();
    println!("produced {sent} results in {secs:.1} s: {:.0}/s", sent as f64 / secs);
    Ok(())
}
