//! Durable timers.
//!
//! A timer is a (processor, kind, key) with a due time and a payload. Timers live in the
//! application's timer keyspace and are written through the task's transaction, so scheduling,
//! cancelling and firing commit atomically with the state and input positions: a timer fires
//! exactly once even across crashes, and a rolled-back record leaves no timer behind.
//!
//! Layout (all keys start with the task's partition, big-endian):
//! - `p | 'T' | kind | due (ordered i64) | node length u16 | node | key` -> payload: the due queue;
//! - `p | 'I' | kind | node length u16 | node | key` -> due: finds a timer to move or cancel;
//! - `p | 'S'` -> stream time, so stream-time timers resume where they were after a restart.

use std::ops::{Bound, ControlFlow};

use orderflow_state_stores::codec::{decode_i64_ordered, encode_i64_ordered};
use serde::{Deserialize, Serialize};

use crate::error::ProcessError;
use crate::processor::FiredTimer;
use crate::task::TaskCore;

/// What time a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKind {
    /// The runtime's clock: fires even when no records arrive (deadlines, TTLs, retries).
    WallClock,
    /// The task's stream time, the largest record timestamp seen (window closing).
    StreamTime,
}

impl TimerKind {
    fn tag(self) -> u8 {
        match self {
            TimerKind::WallClock => 0,
            TimerKind::StreamTime => 1,
        }
    }
}

/// The keyspace holding an application's timers.
pub fn timer_space_name(application_id: &str) -> String {
    format!("timers.{application_id}")
}

fn node_and_key(out: &mut Vec<u8>, node: &str, key: &[u8]) {
    out.extend_from_slice(&(node.len() as u16).to_be_bytes());
    out.extend_from_slice(node.as_bytes());
    out.extend_from_slice(key);
}

fn queue_key(partition: u32, kind: TimerKind, due: i64, node: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + node.len() + key.len());
    out.extend_from_slice(&partition.to_be_bytes());
    out.push(b'T');
    out.push(kind.tag());
    out.extend_from_slice(&encode_i64_ordered(due));
    node_and_key(&mut out, node, key);
    out
}

fn index_key(partition: u32, kind: TimerKind, node: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + node.len() + key.len());
    out.extend_from_slice(&partition.to_be_bytes());
    out.push(b'I');
    out.push(kind.tag());
    node_and_key(&mut out, node, key);
    out
}

pub(crate) fn stream_time_key(partition: u32) -> Vec<u8> {
    let mut out = partition.to_be_bytes().to_vec();
    out.push(b'S');
    out
}

/// Splits a due-queue key into (due, node, timer key).
fn parse_queue_key(encoded: &[u8]) -> Option<(i64, &str, &[u8])> {
    let due = decode_i64_ordered(encoded.get(6..14)?.try_into().ok()?);
    let node_length = u16::from_be_bytes(encoded.get(14..16)?.try_into().ok()?) as usize;
    let node = std::str::from_utf8(encoded.get(16..16 + node_length)?).ok()?;
    let key = encoded.get(16 + node_length..)?;
    Some((due, node, key))
}

pub(crate) fn schedule(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
    due_ms: i64,
    payload: Vec<u8>,
) -> Result<(), ProcessError> {
    cancel(core, node, kind, key)?;
    let space = core.timer_space;
    let partition = core.partition;
    core.transaction.write(
        space,
        queue_key(partition, kind, due_ms, node, key),
        Some(payload),
    );
    core.transaction.write(
        space,
        index_key(partition, kind, node, key),
        Some(encode_i64_ordered(due_ms).to_vec()),
    );
    Ok(())
}

pub(crate) fn cancel(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
) -> Result<(), ProcessError> {
    let space = core.timer_space;
    let index = index_key(core.partition, kind, node, key);
    let Some(due) = core.transaction.get(space, &index)? else {
        return Ok(());
    };
    let due: [u8; 8] = due
        .as_slice()
        .try_into()
        .map_err(|_| ProcessError::invalid("corrupt timer index entry"))?;
    let due = decode_i64_ordered(due);
    core.transaction
        .write(space, queue_key(core.partition, kind, due, node, key), None);
    core.transaction.write(space, index, None);
    Ok(())
}

/// Removes and returns the timers of `kind` due at or before `up_to`, in due order.
pub(crate) fn take_due(
    core: &mut TaskCore,
    kind: TimerKind,
    up_to: i64,
    limit: usize,
) -> Result<Vec<(String, FiredTimer)>, ProcessError> {
    let space = core.timer_space;
    let partition = core.partition;
    let mut lower = partition.to_be_bytes().to_vec();
    lower.extend_from_slice(&[b'T', kind.tag()]);
    let mut upper = lower.clone();
    upper.extend_from_slice(&encode_i64_ordered(up_to));
    upper.push(0xff);
    let mut due = Vec::new();
    core.transaction.scan(
        space,
        Bound::Included(&lower),
        Bound::Excluded(&upper),
        &mut |encoded, payload| {
            if let Some((due_ms, node, key)) = parse_queue_key(encoded)
                && due_ms <= up_to
            {
                due.push((
                    encoded.to_vec(),
                    node.to_string(),
                    FiredTimer {
                        kind,
                        key: key.to_vec(),
                        due_ms,
                        payload: payload.to_vec(),
                    },
                ));
            }
            if due.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    let mut fired = Vec::with_capacity(due.len());
    for (queue_entry, node, timer) in due {
        core.transaction.write(space, queue_entry, None);
        core.transaction
            .write(space, index_key(partition, kind, &node, &timer.key), None);
        fired.push((node, timer));
    }
    Ok(fired)
}
