//! Starts `orderflow serve` (the binary under test) in a temporary data directory and waits
//! until it is ready; the server is killed if the test fails half-way.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines};

use serde_json::Value;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_EMAIL: &str = "boss@example.com";
pub const ADMIN_PASSWORD: &str = "boss password 1";

pub struct RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What the server printed up to its "listening on" line.
    pub banner: String,
    /// The rest of its standard output, read after a stop.
    stdout: Lines<BufReader<ChildStdout>>,
    child: Child,
    /// The data directory when the server owns it (see [`RunningServer::start_in`]).
    _data: Option<tempfile::TempDir>,
}

impl RunningServer {
    /// `serve --listen 127.0.0.1:0` plus `arguments`, with the first admin from the
    /// environment and `environment` set; returns once `/health/ready` answers 200.
    pub fn start(arguments: &[&str], environment: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut server = Self::start_in(data.path(), arguments, environment);
        server._data = Some(data);
        server
    }

    /// [`Self::start`] in a data directory the caller keeps, so a test can restart the server
    /// over the same data.
    pub fn start_in(
        data_dir: &std::path::Path,
        arguments: &[&str],
        environment: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(arguments)
            .env("RUST_LOG", "error")
            .env("ORDERFLOW_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("ORDERFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .envs(environment.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut base = None;
        let mut banner = String::new();
        for line in stdout.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.strip_prefix("listening on ") {
                base = Some(rest.split(' ').next().unwrap().to_string());
                break;
            }
        }
        let server = Self {
            base: base.unwrap_or_default(),
            banner,
            stdout,
            child,
            _data: None,
        };
        assert!(
            !server.base.is_empty(),
            "no listen line in:\n{}",
            server.banner
        );
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready once the topologies run; until then /health/ready answers 503.
        loop {
            let answer = agent.get(format!("{}/health/ready", self.base)).call();
            if answer.is_ok_and(|response| response.status().as_u16() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "never ready:\n{}", self.banner);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: the process dies wherever it is.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; asserts the server says it is stopping and exits successfully.
    pub fn stop_gracefully(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status: ExitStatus = self.child.wait().unwrap();
        let rest: Vec<String> = self.stdout.by_ref().map_while(Result::ok).collect();
        assert!(status.success(), "{status:?} {rest:?}");
        assert!(
            rest.iter().any(|line| line.contains("stopping")),
            "{rest:?}"
        );
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP call: (status, JSON body, or the text as a JSON string); `None` when the server
/// did not answer (a killed server).
pub fn try_call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Option<(u16, Value)> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = match body {
        Some(body) => agent.run(
            request
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .unwrap(),
        ),
        None => agent.run(request.body(()).unwrap()),
    }
    .ok()?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}
