//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! Each request carries `webhook-id` (the event id, the same on every
//! retry), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! several space-separated during a secret rotation's overlap. The key is the
//! base64 part of the endpoint's `whsec_…` secret. Receivers must reject a
//! timestamp more than [`TIMESTAMP_TOLERANCE`] away from their clock, which
//! bounds replays of a captured request.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret.
pub const SECRET_BYTES: usize = 32;
/// How far a receiver should accept `webhook-timestamp` from its own clock.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningError {
    #[error("a webhook secret is `whsec_` followed by base64 key bytes")]
    MalformedSecret,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
    #[error("no signature matches")]
    NoMatchingSignature,
    #[error(transparent)]
    Secret(#[from] SigningError),
}

/// A fresh secret: `whsec_` + base64 of 32 bytes from the OS generator.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The HMAC key of a `whsec_…` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SigningError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(SigningError::MalformedSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| SigningError::MalformedSecret)?;
    if key.is_empty() {
        return Err(SigningError::MalformedSecret);
    }
    Ok(key)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// `v1,<base64>` for one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    Ok(format!("v1,{}", STANDARD.encode(mac(&secret_key(secret)?, id, timestamp, body))))
}

/// The `webhook-signature` value: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String, SigningError> {
    let signatures = secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// What a receiver does: the timestamp within `tolerance` of `now_unix`, and
/// one of the `v1` signatures made with `secret` over this id, timestamp and
/// body (compared in constant time).
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_unix: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now_unix.abs_diff(ts) > tolerance.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let expected = mac(&secret_key(secret)?, id, ts, body);
    let matched = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| given.ct_eq(&expected).into());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Duration = TIMESTAMP_TOLERANCE;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' test suite.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        verify(secret, id, "1614265330", &sig, body, 1614265330, TOL).unwrap();
    }

    #[test]
    fn tampering_an_old_timestamp_or_another_secret_fails() {
        let secret = generate_secret();
        let body = br#"{"type":"transaction.approved"}"#;
        let sig = sign(&secret, "evt_1", 1_000_000, body).unwrap();
        assert_eq!(
            verify(&secret, "evt_1", "1000000", &sig, b"{\"type\":\"transaction.rejected\"}", 1_000_000, TOL),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify(&secret, "evt_2", "1000000", &sig, body, 1_000_000, TOL),
            Err(VerifyError::NoMatchingSignature),
            "the id is signed"
        );
        assert_eq!(
            verify(&secret, "evt_1", "1000000", &sig, body, 1_000_000 + 301, TOL),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&generate_secret(), "evt_1", "1000000", &sig, body, 1_000_000, TOL),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(verify(&secret, "evt_1", "soon", &sig, body, 1_000_000, TOL), Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn during_rotation_both_secrets_verify() {
        let (new, old) = (generate_secret(), generate_secret());
        let header = signature_header(&[&new, &old], "evt_1", 5, b"{}").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        verify(&new, "evt_1", "5", &header, b"{}", 5, TOL).unwrap();
        verify(&old, "evt_1", "5", &header, b"{}", 5, TOL).unwrap();
    }

    #[test]
    fn secrets_are_prefixed_and_decode_to_32_bytes() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), SECRET_BYTES);
        assert_ne!(s, generate_secret());
        assert_eq!(secret_key("nope"), Err(SigningError::MalformedSecret));
        assert_eq!(secret_key("whsec_"), Err(SigningError::MalformedSecret));
    }
}
