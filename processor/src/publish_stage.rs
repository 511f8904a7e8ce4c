//! Publishing a stored batch: every result and dead letter is sent, then
//! every delivery report awaited. Records the broker failed to take for a
//! transient reason are sent again (partitions paused meanwhile); a record
//! it refuses for good is not retried: a refused result becomes a dead
//! letter, a refused dead letter is sent again with its headers only.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::Message;
use transaction_model::message::REQUEST_ID_HEADER;

use crate::decode::DeadLetterReason;
use crate::failure::{delivery_kind, FailureKind};
use crate::metrics::STAGE_PRODUCE;
use crate::pipeline::{Delivered, Interrupted, Run, StoredBatch, DLQ_REASON_HEADER};
use crate::redact::{redact_payload, redact_text, MAX_KEY_BYTES};
use crate::stage_retry::backoff;

/// One record to publish.
enum Outgoing {
    Result {
        key: String,
        payload: Vec<u8>,
        request_id: Option<String>,
        index: usize,
    },
    /// `payload` and `key` are `None` in the headers-only form.
    Dead {
        index: usize,
        reason: DeadLetterReason,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
    },
}

impl<'c> Run<'c> {
    pub(crate) async fn publish(&self, stored: &StoredBatch<'c>) -> Result<Delivered, Interrupted> {
        let started = Instant::now();
        let messages = &stored.batch.messages;
        let mut pending = Vec::with_capacity(stored.stored.len() + stored.dead.len());
        for d in &stored.stored {
            match d.transaction.to_result_message().to_json() {
                Ok(payload) => pending.push(Outgoing::Result {
                    key: d.transaction.id.as_str().to_owned(),
                    payload,
                    request_id: d.request_id.clone(),
                    index: d.index,
                }),
                Err(e) => {
                    self.p.metrics.permanent_failures.with_label_values(&[STAGE_PRODUCE]).inc();
                    pending.push(dead_letter(
                        messages,
                        d.index,
                        DeadLetterReason::new(format!("result not serialisable: {e}")),
                    ));
                }
            }
        }
        for d in &stored.dead {
            pending.push(dead_letter(messages, d.index, d.reason.clone()));
        }

        let mut delivered = Delivered::default();
        let mut failures: u32 = 0;
        let mut paused = None;
        while !pending.is_empty() {
            let outcomes = join_all(pending.iter().map(|o| self.send(o, messages))).await;
            let mut again = Vec::new();
            let mut transient: Option<KafkaError> = None;
            for (o, outcome) in pending.into_iter().zip(outcomes) {
                let e = match outcome {
                    Ok(()) => {
                        match o {
                            Outgoing::Result { .. } => delivered.results += 1,
                            Outgoing::Dead { .. } => delivered.dead_letters += 1,
                        }
                        continue;
                    }
                    Err(e) => e,
                };
                if delivery_kind(&e) == FailureKind::Transient {
                    transient = Some(e);
                    again.push(o);
                    continue;
                }
                self.p.metrics.permanent_failures.with_label_values(&[STAGE_PRODUCE]).inc();
                match o {
                    Outgoing::Result { key, index, .. } => {
                        tracing::warn!(id = %key, error = %e, "the broker refuses the result; dead-lettered");
                        again.push(dead_letter(
                            messages,
                            index,
                            DeadLetterReason::new(format!("broker refused the result: {e}")),
                        ));
                    }
                    Outgoing::Dead { index, reason, payload: Some(_), .. } => {
                        tracing::warn!(error = %e, "the broker refuses the dead letter; sending its headers only");
                        again.push(Outgoing::Dead { index, reason, key: None, payload: None });
                    }
                    Outgoing::Dead { index, reason, payload: None, .. } => {
                        let m = &messages[index];
                        tracing::error!(topic = m.topic(), partition = m.partition(), offset = m.offset(),
                            reason = reason.as_str(), error = %e, "the broker refuses even a headers-only dead letter; message dropped");
                        self.p.metrics.dead_letters_lost.inc();
                    }
                }
            }
            pending = again;
            if let Some(e) = transient {
                failures += 1;
                self.p.metrics.batch_retries.with_label_values(&[STAGE_PRODUCE]).inc();
                let wait = backoff(failures);
                tracing::warn!(stage = STAGE_PRODUCE, error = %e, failures, retry_in_ms = wait.as_millis() as u64,
                    "batch stage failed; partitions paused, offsets held, retrying");
                if paused.is_none() {
                    paused = Some(self.pause());
                }
                self.wait(wait).await?;
            } else if failures > 0 && pending.is_empty() {
                tracing::info!(stage = STAGE_PRODUCE, failures, "recovered; batch continues");
            }
        }
        drop(paused);
        self.observe(STAGE_PRODUCE, started);
        Ok(delivered)
    }

    /// Sends one record and waits for its delivery report.
    async fn send(&self, o: &Outgoing, messages: &[rdkafka::message::BorrowedMessage<'c>]) -> Result<(), KafkaError> {
        let queue_timeout = Timeout::After(Duration::from_secs(5));
        let producer = &self.p.producer;
        let sent = match o {
            Outgoing::Result { key, payload, request_id, .. } => {
                let mut record = FutureRecord::to(&self.p.topics.results).key(key.as_str()).payload(payload.as_slice());
                if let Some(rid) = request_id {
                    record =
                        record.headers(OwnedHeaders::new().insert(Header { key: REQUEST_ID_HEADER, value: Some(rid) }));
                }
                producer.send(record, queue_timeout).await
            }
            Outgoing::Dead { index, reason, key, payload } => {
                let m = &messages[*index];
                let headers = OwnedHeaders::new()
                    .insert(Header { key: DLQ_REASON_HEADER, value: Some(reason.as_str()) })
                    .insert(Header { key: "source_topic", value: Some(m.topic()) })
                    .insert(Header { key: "source_partition", value: Some(&m.partition().to_string()) })
                    .insert(Header { key: "source_offset", value: Some(&m.offset().to_string()) });
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.p.topics.dlq).headers(headers);
                if let Some(key) = key {
                    record = record.key(key.as_slice());
                }
                if let Some(payload) = payload {
                    record = record.payload(payload.as_slice());
                }
                producer.send(record, queue_timeout).await
            }
        };
        sent.map(|_| ()).map_err(|(e, _)| e)
    }
}

/// A dead letter for message `index`: its key and payload redacted.
fn dead_letter(messages: &[rdkafka::message::BorrowedMessage<'_>], index: usize, reason: DeadLetterReason) -> Outgoing {
    let m = &messages[index];
    Outgoing::Dead {
        index,
        reason,
        key: m.key().map(|k| redact_text(k, MAX_KEY_BYTES)),
        payload: Some(m.payload().map(redact_payload).unwrap_or_default()),
    }
}
