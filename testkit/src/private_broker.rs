//! A broker of a test's own, for tests that kill the broker or come between
//! it and its clients: the prebuilt tansu with memory storage (`TANSU`), or
//! the durable one with SQLite storage (`TANSU_DURABLE`), which keeps its
//! data across a restart. `scripts/test` sets both (the durable one only
//! where `scripts/broker install --durable` has built it).

use std::time::{Duration, Instant};

pub struct PrivateBroker {
    dir: tempfile::TempDir,
    durable: bool,
    port: u16,
    advertised_port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateBroker {
    /// Clients reach it at [`address`](Self::address).
    pub async fn start() -> Self {
        let port = free_port();
        Self::start_advertising(port, port).await
    }

    /// The durable broker (keeps topics, messages and group offsets across
    /// [`restart`](Self::restart)), or `None` where it is not installed.
    pub async fn start_durable() -> Option<Self> {
        durable_binary()?;
        let port = free_port();
        Some(Self::launch(true, port, port).await)
    }

    /// Listens on `port` but tells clients (in metadata) to use
    /// `advertised_port`: where a [`crate::FlakyLink`] forwards from.
    pub async fn start_advertising(port: u16, advertised_port: u16) -> Self {
        Self::launch(false, port, advertised_port).await
    }

    async fn launch(durable: bool, port: u16, advertised_port: u16) -> Self {
        let mut broker =
            PrivateBroker { dir: tempfile::tempdir().unwrap(), durable, port, advertised_port, child: None };
        broker.restart().await;
        broker
    }

    /// Where it listens.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        let (tansu, engine) = if self.durable {
            (durable_binary().expect("durable tansu installed"), "sqlite://tansu.db")
        } else {
            (memory_binary(), "memory://tansu/")
        };
        let child = tokio::process::Command::new(tansu)
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", engine])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tansu is installed (scripts/broker path prints it; scripts/test sets TANSU)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.address()).await.is_err() {
            assert!(Instant::now() < deadline, "private broker did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// `TANSU`, or the prebuilt broker `scripts/broker path` installs.
fn memory_binary() -> String {
    std::env::var("TANSU").unwrap_or_else(|_| broker_script(&["path"]).expect("scripts/broker path prints the broker"))
}

/// `TANSU_DURABLE`, or the durable broker if `scripts/broker` has built it.
pub fn durable_binary() -> Option<String> {
    let path = std::env::var("TANSU_DURABLE").ok().or_else(|| broker_script(&["installed", "--durable"]))?;
    std::path::Path::new(&path).is_file().then_some(path)
}

/// What `scripts/broker ARGS` prints, if it succeeds and prints something.
fn broker_script(args: &[&str]) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/broker");
    let out = std::process::Command::new("bash").arg(script).args(args).output().ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then_some(path)
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
