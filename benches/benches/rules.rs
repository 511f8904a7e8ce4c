//! Decode + approval rules, per message.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use processor::card_hash::CardHasher;
use processor::decode::decode;
use processor::rules::evaluate;
use rand::SeedableRng;
use time::OffsetDateTime;

fn decode_and_decide(c: &mut Criterion) {
    let hasher = CardHasher::new(b"benchmark-card-hash-key").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let payloads: Vec<Vec<u8>> = (0..1000)
        .map(|i| serde_json::to_vec(&benches::workload::transaction(&mut rng, format!("bench-{i}"), "m-1")).unwrap())
        .collect();
    let now = OffsetDateTime::now_utc();

    let mut group = c.benchmark_group("per_message");
    group.throughput(Throughput::Elements(payloads.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for p in &payloads {
                black_box(decode(Some(p)).unwrap());
            }
        })
    });
    group.bench_function("decode_and_rules", |b| {
        b.iter(|| {
            for p in &payloads {
                let (id, raw) = decode(Some(p)).unwrap();
                black_box(evaluate(id, &raw, now, &hasher));
            }
        })
    });
    group.bench_function("decode_rules_and_result_json", |b| {
        b.iter(|| {
            for p in &payloads {
                let (id, raw) = decode(Some(p)).unwrap();
                black_box(evaluate(id, &raw, now, &hasher).to_result_message().to_json().ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode_and_decide);
criterion_main!(benches);
