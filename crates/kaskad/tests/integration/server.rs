//! A `kaskad serve` process and API keys for the tests that talk HTTP.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::support::{kaskad, last_line, stderr};

/// A new API key of `role` for `home`, as `kaskad keys create` prints it.
pub fn key(home: &Path, role: &str) -> String {
    let out = kaskad(&[
        "keys",
        "create",
        "--home",
        home.to_str().unwrap(),
        "--role",
        role,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = last_line(&out);
    assert!(key.starts_with("ksk_") && key.len() == 68, "{key}");
    key
}

/// A running `kaskad serve`; killed if a test fails before stopping it.
pub struct Server {
    pub child: Child,
    /// `127.0.0.1:PORT`, as the server printed it.
    pub addr: String,
}

impl Server {
    pub fn start(home: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kaskad"))
            .args([
                "serve",
                "--home",
                home.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env_remove("KASKAD_HOME")
            .env_remove("KASKAD_REMOTE_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kaskad serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "bound address on stdout: {addr:?}"
        );
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The Prometheus text of `GET /metrics`.
    pub fn metrics(&self, c: &Client) -> String {
        c.get(self.url("/metrics")).send().unwrap().text().unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}
