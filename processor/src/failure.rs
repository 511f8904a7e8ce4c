//! Which failures of a batch stage pass by themselves (retry, partitions
//! paused) and which are the data's fault (isolate the message, dead-letter
//! it, go on).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
pub use transaction_store::FailureKind;

/// A delivery failure. Only record-level refusals are permanent: a broker
/// that is down, slow, or missing the topic shows as timeouts and transport
/// errors, which are retried.
pub fn delivery_kind(e: &KafkaError) -> FailureKind {
    use RDKafkaErrorCode::*;
    match e {
        KafkaError::MessageProduction(
            MessageSizeTooLarge | InvalidMessage | InvalidMessageSize | MessageBatchTooLarge | InvalidRecord
            | InvalidTimestamp | BadMessage | InvalidArgument | PolicyViolation,
        ) => FailureKind::Permanent,
        _ => FailureKind::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_is_permanent_and_timeouts_are_not() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(delivery_kind(&too_large), FailureKind::Permanent);
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert_eq!(delivery_kind(&timed_out), FailureKind::Transient);
        let unknown_topic = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert_eq!(delivery_kind(&unknown_topic), FailureKind::Transient);
    }
}
