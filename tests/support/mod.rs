//! Shared by the crash tests: run a workload command, SIGKILL it at random moments, restart it.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::ops::Range;
use std::process::Command;
use std::time::Duration;

/// Starts `workload()` `kills` times and SIGKILLs each run after a random delay in
/// `delay_ms`, then runs it once more to completion and returns whether that run succeeded.
/// The schedule comes from `ORDERFLOW_TEST_SEED` when set (printed either way, to replay).
pub fn kill_repeatedly_then_finish(
    workload: impl Fn() -> Command,
    kills: usize,
    delay_ms: Range<u64>,
) -> std::process::ExitStatus {
    let mut random = fastrand::Rng::with_seed(test_seed());
    for _ in 0..kills {
        let mut child = workload().spawn().expect("the workload starts");
        std::thread::sleep(Duration::from_millis(random.u64(delay_ms.clone())));
        child.kill().expect("SIGKILL is delivered");
        child.wait().expect("the killed child is reaped");
    }
    workload().status().expect("the final run starts")
}

/// The seed of a test's random schedule: `ORDERFLOW_TEST_SEED` when set, else a fresh one;
/// printed either way, to replay a failure.
pub fn test_seed() -> u64 {
    let seed = std::env::var("ORDERFLOW_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (set ORDERFLOW_TEST_SEED to replay)");
    seed
}
