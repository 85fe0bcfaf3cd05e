//! `orderflow loadgen` against a real `orderflow serve`: every order it places reaches
//! CONFIRMED, the report and the plot say so, the bare poem yardstick runs in the same
//! invocation, and a fixed rate is held to (orders are not sent ahead of schedule).

mod running_server;

use std::process::Command;

use serde_json::Value;

use self::running_server::{ADMIN_EMAIL, ADMIN_PASSWORD, RunningServer};

fn loadgen(base: &str, arguments: &[&str]) -> Value {
    let directory = tempfile::tempdir().unwrap();
    let report = directory.path().join("report.json");
    let plot = directory.path().join("plot.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["loadgen", "--url", base, "--users", "3", "--products", "2"])
        .args(arguments)
        .arg("--report")
        .arg(&report)
        .arg("--plot")
        .arg(&plot)
        .env("RUST_LOG", "error")
        .env("ORDERFLOW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ORDERFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    let mut report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    report["stdout"] = Value::String(stdout.into_owned());
    report
}

#[test]
fn every_order_loadgen_places_reaches_confirmed_and_is_reported() {
    // Rate limits off: loadgen's clients all come from one IP.
    let mut server = RunningServer::start(
        &[],
        &[
            ("ORDERFLOW__API__RATE_LIMITS__PER_USER_PER_SECOND", "0"),
            ("ORDERFLOW__API__RATE_LIMITS__PER_IP_PER_SECOND", "0"),
        ],
    );

    let report = loadgen(
        &server.base,
        &[
            "--orders",
            "60",
            "--connections",
            "4",
            "--compare-bare-poem",
        ],
    );
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "{report:#}");
    let (bare, api) = (&phases[0], &phases[1]);
    assert_eq!(bare["name"], "bare poem handler");
    assert_eq!(bare["post_statuses"]["202"], 60, "{bare:#}");
    assert_eq!(api["post_statuses"]["202"], 60, "{api:#}");
    assert_eq!(api["outcomes"]["CONFIRMED"], 60, "{api:#}");
    assert_eq!(api["post_latency"]["count"], 60);
    assert_eq!(api["post_to_confirmed_latency"]["count"], 60);
    let latency = &api["post_to_confirmed_latency"];
    let p50 = latency["p50_ms"].as_f64().unwrap();
    let p99 = latency["p99_ms"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{latency}");
    // An order is confirmed after it was accepted.
    assert!(
        p50 >= api["post_latency"]["p50_ms"].as_f64().unwrap(),
        "{api:#}"
    );
    let confirmed_over_time: u64 = api["confirmed_per_second_over_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(confirmed_over_time, 60);
    let ratio = report["post_throughput_vs_bare_poem"].as_f64().unwrap();
    assert!(ratio > 0.0, "{report:#}");
    assert!(
        report["stdout"]
            .as_str()
            .unwrap()
            .contains("POST throughput vs the bare poem handler"),
        "{report:#}"
    );

    // At 100 orders/s, 30 orders cannot finish before their schedule: 29 intervals of 10 ms.
    let paced = loadgen(
        &server.base,
        &["--orders", "30", "--rate", "100", "--mode", "post-only"],
    );
    let phase = &paced["phases"][0];
    assert_eq!(phase["post_statuses"]["202"], 30, "{paced:#}");
    assert!(
        phase["outcomes"].as_object().unwrap().is_empty(),
        "{paced:#}"
    );
    assert!(phase["seconds"].as_f64().unwrap() >= 0.29, "{paced:#}");
    assert!(paced["post_throughput_vs_bare_poem"].is_null());

    // After the load, the server still stops gracefully.
    server.stop_gracefully();
}

#[test]
fn loadgen_reports_refused_orders_instead_of_hiding_them() {
    // Rate limits on, at 1 order per second per customer: most orders are refused with 429.
    let server = RunningServer::start(
        &[],
        &[
            ("ORDERFLOW__API__RATE_LIMITS__PER_USER_PER_SECOND", "1"),
            ("ORDERFLOW__API__RATE_LIMITS__PER_USER_BURST", "1"),
            ("ORDERFLOW__API__RATE_LIMITS__PER_IP_PER_SECOND", "0"),
        ],
    );
    let report = loadgen(&server.base, &["--orders", "20", "--mode", "post-only"]);
    let statuses = &report["phases"][0]["post_statuses"];
    assert!(statuses["429"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(
        statuses["202"].as_u64().unwrap_or(0) + statuses["429"].as_u64().unwrap(),
        20,
        "{report:#}"
    );
    assert!(
        report["phases"][0]["first_error"]
            .as_str()
            .unwrap()
            .contains("429"),
        "{report:#}"
    );
}
