//! Short-lived signed session tokens: `base64url(claims).base64url(hmac)`.
//! The login endpoint issues them; the WebSocket and the JSON endpoints
//! accept nothing else, so no secret travels after the login request.
//!
//! A session has an id (`sid`, kept across renewals), its sign-in time
//! (`iat`: renewals never go past `iat` + the maximum age), an idle expiry
//! (`exp`: a token not renewed in time ends the session), and a binding
//! (`bind`) to the credential it was issued for: a digest of the merchant's
//! stored secret hash or of the operator token. Rotating the secret or
//! changing the token therefore ends every session issued for the old one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Shortest SESSION_KEY accepted.
pub const MIN_KEY_LEN: usize = 32;

/// Who a session is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    Operator,
    Merchant { account_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(flatten)]
    pub role: Role,
    /// Unix seconds after which the token is refused.
    pub exp: i64,
    /// Session id, the same across renewals.
    pub sid: String,
    /// Unix seconds of the sign-in.
    pub iat: i64,
    /// [`binding`] of the credential the session was issued for.
    pub bind: String,
}

/// A new random session id.
pub fn new_session_id() -> String {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    URL_SAFE_NO_PAD.encode(id)
}

/// A short digest of credential material (a stored secret hash, an
/// operator-token digest). It is visible in the token's claims, so it is a
/// one-way digest of material that is itself a digest: it tells nothing of
/// the credential, only whether it changed.
pub fn binding(material: &[u8]) -> String {
    let mut h = <Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut h, b"dashboard-session-binding\0");
    sha2::Digest::update(&mut h, material);
    hex::encode(&sha2::Digest::finalize(h)[..12])
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("malformed session token")]
    Malformed,
    #[error("session token signature does not match")]
    BadSignature,
    #[error("session expired")]
    Expired,
}

#[derive(Debug, Error)]
#[error("SESSION_KEY must be at least {MIN_KEY_LEN} bytes")]
pub struct WeakSessionKey;

pub struct SessionSigner {
    // Pre-keyed state, cloned per use: keying cannot fail after start-up.
    keyed: HmacSha256,
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSigner(<redacted>)")
    }
}

impl SessionSigner {
    pub fn new(key: &[u8]) -> Result<Self, WeakSessionKey> {
        if key.len() < MIN_KEY_LEN {
            return Err(WeakSessionKey);
        }
        let keyed = HmacSha256::new_from_slice(key).map_err(|_| WeakSessionKey)?;
        Ok(SessionSigner { keyed })
    }

    /// A key of this process only: its sessions end when it stops.
    pub fn random() -> Self {
        let mut key = [0u8; MIN_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::new(&key).unwrap_or_else(|_| unreachable!("a key of MIN_KEY_LEN bytes is accepted"))
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, serde_json::Error> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{sig}"))
    }

    /// Checks the signature (in constant time) before reading anything.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<Claims, SessionError> {
        let (payload, sig) = token.split_once('.').ok_or(SessionError::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| SessionError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).map_err(|_| SessionError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| SessionError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)?;
        if claims.exp <= now_unix {
            return Err(SessionError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(exp: i64) -> Claims {
        Claims { role: Role::Merchant { account_id: "m-1".into() }, exp, sid: "s".into(), iat: 0, bind: "b".into() }
    }

    #[test]
    fn round_trips_and_expires() {
        let s = SessionSigner::random();
        let token = s.issue(&merchant(1000)).unwrap();
        assert_eq!(s.verify(&token, 999), Ok(merchant(1000)));
        assert_eq!(s.verify(&token, 1000), Err(SessionError::Expired));
        let op = Claims { role: Role::Operator, exp: 50, sid: new_session_id(), iat: 0, bind: binding(b"x") };
        assert_ne!(op.sid, new_session_id());
        assert_eq!(binding(b"x"), binding(b"x"));
        assert_ne!(binding(b"x"), binding(b"y"));
        assert_eq!(s.verify(&s.issue(&op).unwrap(), 0), Ok(op));
    }

    #[test]
    fn refuses_forged_or_foreign_tokens() {
        let s = SessionSigner::random();
        let token = s.issue(&merchant(1000)).unwrap();
        // Another key (another deployment) does not verify.
        assert_eq!(SessionSigner::random().verify(&token, 0), Err(SessionError::BadSignature));
        // Changing the claims breaks the signature: no becoming an operator.
        let (_, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"role":"operator","exp":9999}"#);
        assert_eq!(s.verify(&format!("{forged}.{sig}"), 0), Err(SessionError::BadSignature));
        assert_eq!(s.verify("garbage", 0), Err(SessionError::Malformed));
        assert_eq!(s.verify("a.!!!", 0), Err(SessionError::Malformed));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SessionSigner::new(b"short").is_err());
        assert!(SessionSigner::new(&[7u8; 32]).is_ok());
        assert!(!format!("{:?}", SessionSigner::new(&[7u8; 32]).unwrap()).contains('7'));
    }
}
