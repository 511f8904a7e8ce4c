//! No silent defaults: a service refuses to start with a missing secret or
//! with one of the development keys published in this repository, unless it
//! is explicitly started in development mode (`--development` or
//! `GATEWAY_DEVELOPMENT=1`), which `scripts/run-local` and the tests may set.

/// The environment variable of the development flag.
pub const DEVELOPMENT_ENV: &str = "GATEWAY_DEVELOPMENT";

/// Keys that appear in this repository (code, compose files, READMEs): a
/// deployment that uses one of them is not protected by it.
pub const KNOWN_DEVELOPMENT_KEYS: &[&str] = &[
    "development-only-secret-hash-key",
    "development-only-card-hash-key",
    "dev-only-secret-hash-key-change-me",
    "dev-only-card-hash-key-change-me",
    "dev-only-operator-token-change-me",
    "dev-only-session-key-change-me-32-bytes-long",
    "change-me-16-bytes-or-more",
    "change-me-operator-token",
    "REPLACE_ME",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevKeyError {
    #[error("{name} is not set; set it (e.g. `openssl rand -hex 32`), or start with --development / {DEVELOPMENT_ENV}=1 for a local run")]
    Missing { name: &'static str },
    #[error("{name} is a development key published in the repository; set a secret one (e.g. `openssl rand -hex 32`), or start with --development / {DEVELOPMENT_ENV}=1 for a local run")]
    Known { name: &'static str },
}

/// Whether `value` is one of the published development keys (ignoring
/// surrounding whitespace), or still holds a template's `REPLACE_ME`
/// placeholder (`REPLACE_ME_OPERATOR_TOKEN_32_RANDOM_BYTES` and the like).
pub fn is_known_development_key(value: &str) -> bool {
    let value = value.trim();
    KNOWN_DEVELOPMENT_KEYS.contains(&value) || value.contains("REPLACE_ME")
}

/// Checks one secret. Outside development mode a missing or published key is
/// an error; in development mode it is allowed with a warning (the caller
/// then picks its development fallback for a missing key).
pub fn require(name: &'static str, value: Option<&str>, development: bool) -> Result<(), DevKeyError> {
    let problem = match value {
        None => Some(DevKeyError::Missing { name }),
        Some(v) if v.trim().is_empty() => Some(DevKeyError::Missing { name }),
        Some(v) if is_known_development_key(v) => Some(DevKeyError::Known { name }),
        Some(_) => None,
    };
    match problem {
        None => Ok(()),
        Some(e) if development => {
            tracing::warn!(key = name, "development mode: {e}");
            Ok(())
        }
        Some(e) => Err(e),
    }
}

/// The development flag from the environment, for services whose
/// configuration has no flag of its own: `1`, `true` or `yes`.
pub fn development_from_env() -> bool {
    std::env::var(DEVELOPMENT_ENV).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_and_published_keys_outside_development() {
        assert_eq!(require("K", None, false), Err(DevKeyError::Missing { name: "K" }));
        assert_eq!(require("K", Some("  "), false), Err(DevKeyError::Missing { name: "K" }));
        assert_eq!(
            require("K", Some("dev-only-secret-hash-key-change-me"), false),
            Err(DevKeyError::Known { name: "K" })
        );
        assert_eq!(
            require("K", Some("development-only-secret-hash-key"), false),
            Err(DevKeyError::Known { name: "K" })
        );
        assert_eq!(
            require("K", Some("REPLACE_ME_OPERATOR_TOKEN_32_RANDOM_BYTES"), false),
            Err(DevKeyError::Known { name: "K" })
        );
        assert_eq!(require("K", Some("8f1c2b7a9e0d4c3b8a7f6e5d4c3b2a19"), false), Ok(()));
        // Development mode lets both through.
        assert_eq!(require("K", None, true), Ok(()));
        assert_eq!(require("K", Some("change-me-operator-token"), true), Ok(()));
        // The message names the key but never echoes its value.
        let text = require("SESSION_KEY", Some("dev-only-session-key-change-me-32-bytes-long"), false)
            .unwrap_err()
            .to_string();
        assert!(text.contains("SESSION_KEY") && !text.contains("dev-only"), "{text}");
    }
}
