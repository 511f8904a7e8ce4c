//! Sealing a message's five card fields (the API, per transaction) and
//! opening them (the processor), and the nonce source a seal draws from.

use card_envelope::{open, seal, Binding, DataKey, Field, KeyId, Keyring};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::RngCore;

const FIELDS: [(Field, &[u8]); 5] = [
    (Field::CardNumber, br#""4111111111111111""#),
    (Field::CardName, br#""Ada Lovelace""#),
    (Field::ExpirationMonth, b"12"),
    (Field::ExpirationYear, b"2030"),
    (Field::Cvv, br#""123""#),
];

fn envelope(c: &mut Criterion) {
    let ring = Keyring::single(KeyId::try_from("bench").unwrap(), DataKey::from_bytes([7; 32]));
    let binding = Binding { transaction_id: "0192f0c4-7f5e-7a3b-9c1d-2e4f6a8b0c1d", account_id: "merchant-1" };

    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal_message_5_fields", |b| {
        b.iter(|| {
            for (field, plaintext) in FIELDS {
                black_box(seal(&ring, binding, field, plaintext));
            }
        })
    });
    let sealed: Vec<(Field, String)> = FIELDS.iter().map(|(f, p)| (*f, seal(&ring, binding, *f, p))).collect();
    group.bench_function("open_message_5_fields", |b| {
        b.iter(|| {
            for (field, value) in &sealed {
                black_box(open(&ring, binding, *field, value).unwrap());
            }
        })
    });
    // Where a seal's 24-byte nonce comes from: a getrandom(2) call each
    // time, or the thread's CSPRNG (ChaCha, reseeded from the OS).
    let mut nonce = [0u8; 24];
    group.bench_function("nonce_os_rng", |b| {
        b.iter(|| {
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            black_box(&nonce);
        })
    });
    group.bench_function("nonce_thread_rng", |b| {
        b.iter(|| {
            rand::thread_rng().fill_bytes(&mut nonce);
            black_box(&nonce);
        })
    });
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
