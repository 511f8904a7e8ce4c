//! The production overlay talks SASL_SSL with SCRAM-SHA-512 to Kafka. The
//! local broker has no SASL, so this proves the client half: librdkafka as
//! the workspace builds it (feature `ssl`, OpenSSL, no `gssapi`) accepts that
//! configuration through KAFKA_OPTIONS, the way the processor builds its
//! clients. GSSAPI (Kerberos, not built) is refused, so the check tells a
//! supported mechanism from an unsupported one. No broker is contacted:
//! client creation is where librdkafka refuses a mechanism it lacks.

use clap::Parser;
use processor::Config;

fn config_with(options: &str) -> Config {
    Config::try_parse_from(["processor", "--kafka-brokers", "127.0.0.1:1", "--kafka-options", options])
        .expect("processor configuration")
}

const SCRAM: &str = "security.protocol=SASL_SSL;sasl.mechanisms=SCRAM-SHA-512;\
                     sasl.username=processor;sasl.password=not-a-real-password";

#[test]
fn librdkafka_accepts_sasl_ssl_with_scram_sha_512() {
    let config = config_with(SCRAM);
    assert!(processor::kafka::producer(&config).is_ok(), "SCRAM-SHA-512 over SASL_SSL refused");
    let sha256 = SCRAM.replace("SCRAM-SHA-512", "SCRAM-SHA-256");
    assert!(processor::kafka::producer(&config_with(&sha256)).is_ok(), "SCRAM-SHA-256 refused");
}

#[test]
fn a_mechanism_librdkafka_was_not_built_with_is_refused() {
    let gssapi = SCRAM.replace("SCRAM-SHA-512", "GSSAPI");
    let refused = processor::kafka::producer(&config_with(&gssapi));
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("GSSAPI") || message.contains("sasl"), "GSSAPI accepted, or refused oddly: {message:?}");
    assert!(!message.contains("not-a-real-password"), "the error quotes the password: {message}");
}
