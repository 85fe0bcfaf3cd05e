//! `orderflow serve` runs every topology embedded: demo orders placed through the real
//! topologies all settle, notifications reach the outbox, and nothing is dead-lettered.

use std::process::Command;

#[test]
fn serve_runs_the_platform_and_every_demo_order_settles() {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("--data-dir")
        .arg(directory.path())
        .args([
            "serve",
            "--demo-orders",
            "60",
            "--demo-rate",
            "0",
            "--exit-after-demo",
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("60 orders in all"), "{stdout}");
    assert!(stdout.contains("0 still in flight"), "{stdout}");
    assert!(stdout.contains("dead letters: 0"), "{stdout}");
    let confirmed: u64 = stdout
        .split("orders in all: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap();
    assert!(
        confirmed >= 40,
        "most demo orders pay with an approving token: {stdout}"
    );
    let outbox: u64 = stdout
        .split("notifications in the outbox: ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|number| number.parse().ok())
        .unwrap();
    assert!(
        outbox >= 60,
        "every order notifies its customer at least once: {stdout}"
    );
}
