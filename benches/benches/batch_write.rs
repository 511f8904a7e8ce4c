//! One batch written in one database transaction, SQLite and MySQL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use processor::card_hash::CardHasher;
use processor::decode::decode;
use processor::rules::evaluate;
use rand::SeedableRng;
use time::OffsetDateTime;
use transaction_model::ProcessedTransaction;
use transaction_store::TransactionRepository;

const BATCH: usize = 1000;

fn batch(counter: &AtomicU64, hasher: &CardHasher) -> Vec<ProcessedTransaction> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(counter.load(Ordering::Relaxed));
    let now = OffsetDateTime::now_utc();
    (0..BATCH)
        .map(|_| {
            let id = format!("w-{}", counter.fetch_add(1, Ordering::Relaxed));
            let payload = serde_json::to_vec(&benches::workload::transaction(&mut rng, id, "m-1")).unwrap();
            let (id, raw) = decode(Some(&payload)).unwrap();
            evaluate(id, &raw, now, hasher)
        })
        .collect()
}

fn bench_repo(c: &mut Criterion, name: &str, rt: &tokio::runtime::Runtime, repo: Arc<dyn TransactionRepository>) {
    let hasher = CardHasher::new(b"benchmark-card-hash-key").unwrap();
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("batch_write");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.bench_function(format!("{name}_new_ids"), |b| {
        b.to_async(rt).iter_batched(
            || batch(&counter, &hasher),
            |batch| {
                let repo = Arc::clone(&repo);
                async move { repo.record_batch(batch).await.unwrap() }
            },
            BatchSize::PerIteration,
        )
    });
    // A replayed batch: every id already stored, decisions read back.
    let replay = batch(&counter, &hasher);
    rt.block_on(repo.record_batch(replay.clone())).unwrap();
    group.bench_function(format!("{name}_replayed_ids"), |b| {
        b.to_async(rt).iter_batched(
            || replay.clone(),
            |batch| {
                let repo = Arc::clone(&repo);
                async move { repo.record_batch(batch).await.unwrap() }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let repo = rt.block_on(transaction_store::open(&url)).unwrap();
    bench_repo(c, "sqlite", &rt, repo);
}

fn mysql(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let url = rt.block_on(transaction_store::mysql::create_scratch_database(&server, "bench")).unwrap();
    let repo = rt.block_on(transaction_store::open(&url)).unwrap();
    bench_repo(c, "mysql", &rt, repo);
    rt.block_on(transaction_store::mysql::drop_scratch_database(&url)).unwrap();
}

criterion_group!(benches, sqlite, mysql);
criterion_main!(benches);
