//! A keyring that services share between threads and reload from its file,
//! so rotating keys is a change to a mounted Secret with no restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::{Keyring, KeyringError};

/// Where a service's keyring comes from.
#[derive(Clone)]
pub enum KeySource {
    /// The text form itself (an environment variable).
    Text(Zeroizing<String>),
    /// A file in the text form, read again on every reload.
    File(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Text(_) => f.write_str("KeySource::Text(<redacted>)"),
            KeySource::File(path) => write!(f, "KeySource::File({})", path.display()),
        }
    }
}

/// A public keyring for development and tests only: anything sealed under it
/// is readable by anyone who has this source code.
pub const DEVELOPMENT_KEYRING: &str = "dev:ZGV2ZWxvcG1lbnQtb25seS1jYXJkLWtleS0zMmJ5dGU=";
/// The CVV's public development keyring (never rotated: development only).
pub const DEVELOPMENT_CVV_KEYRING: &str = "devcvv:ZGV2ZWxvcG1lbnQtb25seS1jdnYta2V5LTMyYnl0ZXM=";

/// Which of a service's two keyrings: the card keyring (card number, name,
/// expiry; kept for the topic's retention) or the CVV's short-lived one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    Card,
    Cvv,
}

impl KeyPurpose {
    /// The settings' prefix: `<prefix>_KEYS`, `<prefix>_KEYS_FILE`.
    pub fn settings(self) -> &'static str {
        match self {
            KeyPurpose::Card => "CARD_ENCRYPTION",
            KeyPurpose::Cvv => "CVV_ENCRYPTION",
        }
    }

    fn development_keyring(self) -> &'static str {
        match self {
            KeyPurpose::Card => DEVELOPMENT_KEYRING,
            KeyPurpose::Cvv => DEVELOPMENT_CVV_KEYRING,
        }
    }
}

impl KeySource {
    /// From a service's two settings (the variable wins over the file), or
    /// `None` when neither is set.
    pub fn from_settings(text: Option<&str>, file: Option<&std::path::Path>) -> Option<Self> {
        match (text.filter(|t| !t.trim().is_empty()), file) {
            (Some(text), _) => Some(KeySource::Text(Zeroizing::new(text.to_owned()))),
            (None, Some(path)) => Some(KeySource::File(path.to_owned())),
            (None, None) => None,
        }
    }

    /// The public development keyring of `purpose`.
    pub fn development(purpose: KeyPurpose) -> Self {
        KeySource::Text(Zeroizing::new(purpose.development_keyring().to_owned()))
    }

    fn read(&self) -> Result<Zeroizing<String>, KeyringError> {
        match self {
            KeySource::Text(text) => Ok(text.clone()),
            KeySource::File(path) => std::fs::read_to_string(path)
                .map(Zeroizing::new)
                .map_err(|e| KeyringError::Unreadable(format!("{}: {e}", path.display()))),
        }
    }
}

struct Inner {
    source: KeySource,
    state: RwLock<(Zeroizing<String>, Arc<Keyring>)>,
}

#[derive(Clone)]
pub struct SharedKeyring(Arc<Inner>);

impl SharedKeyring {
    pub fn load(source: KeySource) -> Result<Self, KeyringError> {
        let text = source.read()?;
        let ring = Arc::new(Keyring::parse(&text)?);
        Ok(SharedKeyring(Arc::new(Inner { source, state: RwLock::new((text, ring)) })))
    }

    /// A service's keyring from its two settings (`CARD_ENCRYPTION_KEYS`,
    /// `CARD_ENCRYPTION_KEYS_FILE`, or `CVV_…` for the CVV's), a file re-read
    /// every 10 s (a removed CVV key leaves memory at the next reload). With
    /// neither, or with the published development keyring, it is refused
    /// unless `development` (then the development keyring, with a warning).
    pub fn for_service(
        purpose: KeyPurpose,
        text: Option<&str>,
        file: Option<&std::path::Path>,
        development: bool,
    ) -> Result<Self, KeyringError> {
        let name = purpose.settings();
        let source = match KeySource::from_settings(text, file) {
            Some(source) => source,
            None if development => {
                tracing::warn!(
                    "development mode: {name}_KEYS(_FILE) is not set: using the PUBLIC development \
                     keyring; card data on the transactions topic is NOT protected"
                );
                KeySource::development(purpose)
            }
            None => return Err(KeyringError::NotConfigured(name)),
        };
        if !development && source.read()?.trim() == purpose.development_keyring() {
            return Err(KeyringError::DevelopmentKeyring(name));
        }
        let ring = SharedKeyring::load(source)?;
        tracing::info!(keyring = name, current = %ring.get().current().0, "keyring loaded");
        ring.watch(Duration::from_secs(10), move |reloaded| match reloaded {
            Ok(true) => tracing::info!(keyring = name, "keyring reloaded"),
            Ok(false) => {}
            Err(e) => tracing::error!(keyring = name, error = %e, "keyring not reloaded; keeping the current one"),
        })
        .map_err(|e| KeyringError::Unreadable(format!("could not start the reload thread: {e}")))?;
        Ok(ring)
    }

    /// A fixed keyring (tests, tools).
    pub fn fixed(ring: Keyring) -> Self {
        let state = RwLock::new((Zeroizing::new(String::new()), Arc::new(ring)));
        SharedKeyring(Arc::new(Inner { source: KeySource::Text(Zeroizing::new(String::new())), state }))
    }

    /// The keyring as of now: cheap, never blocks on a reload's I/O.
    pub fn get(&self) -> Arc<Keyring> {
        match self.0.state.read() {
            Ok(s) => Arc::clone(&s.1),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().1),
        }
    }

    /// Reads the source again; a keyring that does not parse leaves the
    /// current one in place. `Ok(true)` when it changed.
    pub fn reload(&self) -> Result<bool, KeyringError> {
        let text = self.0.source.read()?;
        if self.0.state.read().map(|s| s.0 == text).unwrap_or(false) {
            return Ok(false);
        }
        let ring = Arc::new(Keyring::parse(&text)?);
        let mut state = self.0.state.write().unwrap_or_else(|p| p.into_inner());
        *state = (text, ring);
        Ok(true)
    }

    /// Reloads every `every` on a thread of its own, logging through
    /// `report`, until every clone of this keyring is dropped.
    pub fn watch(
        &self,
        every: Duration,
        report: impl Fn(Result<bool, KeyringError>) + Send + 'static,
    ) -> std::io::Result<()> {
        if !matches!(self.0.source, KeySource::File(_)) {
            return Ok(());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        std::thread::Builder::new().name("keyring-watch".into()).spawn(move || loop {
            std::thread::sleep(every);
            let Some(inner) = weak.upgrade() else { return };
            report(SharedKeyring(inner).reload());
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn a_file_keyring_reloads_and_keeps_the_old_one_when_the_new_is_bad() {
        let dir = tempfile_dir();
        let path = dir.join("keys");
        std::fs::write(&path, K1).unwrap();
        let ring = SharedKeyring::load(KeySource::File(path.clone())).unwrap();
        assert_eq!(ring.get().current().0.as_str(), "k1");
        assert_eq!(ring.reload(), Ok(false));
        std::fs::write(&path, format!("{K2}\n{K1}")).unwrap();
        assert_eq!(ring.reload(), Ok(true));
        assert_eq!(ring.get().current().0.as_str(), "k2");
        std::fs::write(&path, "k3:not-a-key").unwrap();
        assert!(ring.reload().is_err());
        assert_eq!(ring.get().current().0.as_str(), "k2", "a bad file leaves the keyring as it was");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "card-envelope-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn a_service_refuses_a_missing_or_published_keyring_outside_development() {
        use KeyPurpose::{Card, Cvv};
        let refused = |p, text: Option<&str>| SharedKeyring::for_service(p, text, None, false).err();
        assert_eq!(refused(Card, None), Some(KeyringError::NotConfigured("CARD_ENCRYPTION")));
        assert_eq!(refused(Cvv, None), Some(KeyringError::NotConfigured("CVV_ENCRYPTION")));
        assert_eq!(refused(Card, Some(DEVELOPMENT_KEYRING)), Some(KeyringError::DevelopmentKeyring("CARD_ENCRYPTION")));
        assert_eq!(
            refused(Cvv, Some(DEVELOPMENT_CVV_KEYRING)),
            Some(KeyringError::DevelopmentKeyring("CVV_ENCRYPTION"))
        );
        let dev = SharedKeyring::for_service(Card, None, None, true).unwrap();
        assert_eq!(dev.get().current().0.as_str(), "dev");
        assert_eq!(SharedKeyring::for_service(Cvv, None, None, true).unwrap().get().current().0.as_str(), "devcvv");
        let own = "k9:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(SharedKeyring::for_service(Card, Some(own), None, false).unwrap().get().current().0.as_str(), "k9");
    }
}
