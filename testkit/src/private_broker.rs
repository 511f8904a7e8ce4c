//! A broker of a test's own (tansu with SQLite storage, so it keeps its
//! data across a restart), for tests that kill the broker or come between
//! it and its clients.

use std::time::{Duration, Instant};

pub struct PrivateBroker {
    dir: tempfile::TempDir,
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

    /// Listens on `port` but tells clients (in metadata) to use
    /// `advertised_port`: where a [`crate::FlakyLink`] forwards from.
    pub async fn start_advertising(port: u16, advertised_port: u16) -> Self {
        let mut broker = PrivateBroker { dir: tempfile::tempdir().unwrap(), port, advertised_port, child: None };
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
        let tansu = std::env::var("TANSU").unwrap_or_else(|_| "tansu".into());
        let child = tokio::process::Command::new(tansu)
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tansu is installed (scripts/broker start installs it)");
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

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
