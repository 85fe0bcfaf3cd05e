//! Test services shared by the processors' tests and the binary's (which includes this file
//! by path): free ports and a real stripe-mock.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// stripe-mock on its own port, killed on drop.
pub struct StripeMock {
    child: Child,
    pub port: u16,
}

impl Drop for StripeMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stripe_mock_binary() -> String {
    if let Ok(binary) = std::env::var("STRIPE_MOCK_BIN") {
        return binary;
    }
    let in_go_bin =
        std::path::Path::new(&std::env::var("HOME").unwrap_or_default()).join("go/bin/stripe-mock");
    if in_go_bin.exists() {
        return in_go_bin.display().to_string();
    }
    "stripe-mock".to_string()
}

/// Starts stripe-mock (`STRIPE_MOCK_BIN`, `~/go/bin`, or the PATH; `scripts/test` installs it)
/// and waits until it listens.
pub fn start_stripe_mock() -> StripeMock {
    let port = free_port();
    let binary = stripe_mock_binary();
    let child = Command::new(&binary)
        .args(["-http-port", &port.to_string(), "-https-port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start stripe-mock ({binary}): {error}; install it with `go install github.com/stripe/stripe-mock@latest` (scripts/test does)")
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "stripe-mock did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    StripeMock { child, port }
}
