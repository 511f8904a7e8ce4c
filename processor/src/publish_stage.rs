//! Publishing a stored batch: every result and dead letter is sent, then
//! every delivery report awaited. Records the broker failed to take for a
//! transient reason are sent again (partitions paused meanwhile); a record
//! it refuses for good is not retried: a refused result becomes a dead
//! letter, a refused dead letter is sent again with its headers only.

use std::ops::Range;
use std::time::Instant;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::Message;
use transaction_model::message::REQUEST_ID_HEADER;

use crate::decode::DeadLetterReason;
use crate::failure::{delivery_kind, FailureKind};
use crate::metrics::STAGE_PRODUCE;
use crate::pipeline::{request_id, Delivered, Interrupted, Run, StoredBatch, DLQ_REASON_HEADER};
use crate::redact::{redact_payload, redact_text, MAX_KEY_BYTES};
use crate::stage_retry::backoff;

/// One record to publish. A result is only positions: its key and request
/// id are read from the stored decision and the consumed message, its
/// payload from the batch's one buffer of serialised results.
enum Outgoing {
    Result {
        /// Position in the stored batch's decisions.
        decided: usize,
        payload: Range<usize>,
    },
    /// `payload` and `key` are `None` in the headers-only form.
    Dead { index: usize, reason: DeadLetterReason, key: Option<Vec<u8>>, payload: Option<Vec<u8>> },
}

impl<'c> Run<'c> {
    pub(crate) async fn publish(&self, stored: &StoredBatch<'c>) -> Result<Delivered, Interrupted> {
        let started = Instant::now();
        let messages = &stored.batch.messages;
        let mut pending = Vec::with_capacity(stored.stored.len() + stored.dead.len());
        // Every result serialised into one buffer (librdkafka copies each
        // record on send): one allocation per batch, not one per message.
        let mut payloads = Vec::with_capacity(stored.stored.len() * RESULT_SIZE_HINT);
        for (decided, d) in stored.stored.iter().enumerate() {
            let start = payloads.len();
            match d.transaction.write_result_json(&mut payloads) {
                Ok(()) => pending.push(Outgoing::Result { decided, payload: start..payloads.len() }),
                Err(e) => {
                    payloads.truncate(start);
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
            // Every record handed to librdkafka first, then the reports
            // awaited in order: when the last has come, all have.
            let queued: Vec<_> = pending.iter().map(|o| self.enqueue(o, stored, &payloads)).collect();
            let mut outcomes = Vec::with_capacity(queued.len());
            for q in queued {
                outcomes.push(match q {
                    Ok(delivery) => match delivery.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((e, _))) => Err(e),
                        // The producer went away: transient, retried.
                        Err(_) => Err(KafkaError::Canceled),
                    },
                    Err(e) => Err(e),
                });
            }
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
                    Outgoing::Result { decided, .. } => {
                        let d = &stored.stored[decided];
                        tracing::warn!(id = %d.transaction.id, error = %e, "the broker refuses the result; dead-lettered");
                        again.push(dead_letter(
                            messages,
                            d.index,
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

    /// Hands one record to the producer; its delivery report comes through
    /// the returned future. A full producer queue is a transient failure of
    /// that record (retried with the batch's backoff): it holds no more than
    /// the batches in flight, so it fills only when the broker stalls.
    fn enqueue(&self, o: &Outgoing, stored: &StoredBatch<'c>, payloads: &[u8]) -> Result<DeliveryFuture, KafkaError> {
        let producer = &self.p.producer;
        let messages = &stored.batch.messages;
        match o {
            Outgoing::Result { decided, payload } => {
                let d = &stored.stored[*decided];
                let mut record = FutureRecord::to(&self.p.topics.results)
                    .key(d.transaction.id.as_str())
                    .payload(&payloads[payload.clone()]);
                if let Some(rid) = request_id(&messages[d.index]) {
                    record =
                        record.headers(OwnedHeaders::new().insert(Header { key: REQUEST_ID_HEADER, value: Some(rid) }));
                }
                producer.send_result(record).map_err(|(e, _)| e)
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
                producer.send_result(record).map_err(|(e, _)| e)
            }
        }
    }
}

/// Room for one serialised result (about 300 bytes), so the buffer of a
/// batch's results is rarely grown.
const RESULT_SIZE_HINT: usize = 320;

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
