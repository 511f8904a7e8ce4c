//! TLS for tests: a certificate authority and a server certificate made
//! with the `openssl` command for this test only, and a TLS-terminating
//! proxy (stunnel, from Debian) in front of a plaintext service, so the
//! clients' TLS (verification included) is exercised against the real
//! broker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A CA and a server certificate for `localhost` and `127.0.0.1`.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        let steps: [&[&str]; 3] = [
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr"],
            &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"],
        ];
        let tails: [&[&str]; 3] = [
            &["-subj", "/CN=gateway-test-ca"],
            &["-subj", "/CN=localhost"],
            &["-out", "server.pem", "-days", "2", "-extfile", "san.ext"],
        ];
        for (args, tail) in steps.iter().zip(tails) {
            let out = Command::new("openssl").current_dir(d).args(*args).args(tail).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        TestCa { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// stunnel accepting TLS on `port` and forwarding plaintext to `upstream`.
pub struct TlsTerminator {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsTerminator {
    pub async fn start(ca: &TestCa, port: u16, upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[tls]\naccept = 127.0.0.1:{port}\nconnect = {upstream}\ncert = {}\nkey = {}\n",
                ca.server_cert().display(),
                ca.server_key().display()
            ),
        )
        .unwrap();
        let child = Command::new("stunnel")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stunnel is installed (scripts/test installs stunnel4)");
        wait_listening(port).await;
        TlsTerminator { port, child, _dir: dir }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MariaDB server of the test's own (temporary data directory, loopback
/// port) that requires TLS with the test CA's server certificate. User
/// `root`, no password.
pub struct PrivateMariaDb {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PrivateMariaDb {
    pub async fn start_tls(ca: &TestCa) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect("mariadb-install-db runs");
        assert!(out.status.success(), "mariadb-install-db: {}", String::from_utf8_lossy(&out.stderr));
        let port = crate::free_port();
        let arg = |name: &str, path: &Path| format!("--{name}={}", path.display());
        let child = Command::new("mariadbd")
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
            .arg("--require-secure-transport=ON")
            .arg(format!("--port={port}"))
            .arg(arg("datadir", &data))
            .arg(arg("socket", &dir.path().join("mysqld.sock")))
            .arg(arg("pid-file", &dir.path().join("mysqld.pid")))
            .arg(arg("ssl-ca", &ca.ca()))
            .arg(arg("ssl-cert", &ca.server_cert()))
            .arg(arg("ssl-key", &ca.server_key()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mariadbd runs");
        wait_listening(port).await;
        PrivateMariaDb { port, child, _dir: dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
