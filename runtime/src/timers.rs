//! Durable timers.
//!
//! A timer is a (processor, kind, key) with a due time and a payload. Timers live in the
//! application's timer keyspace and are written through the task's transaction, so scheduling,
//! cancelling and firing commit atomically with the state and input positions: a timer fires
//! exactly once even across crashes, and a rolled-back record leaves no timer behind.
//!
//! Layout (all keys start with the task's sub-topology and partition, `t`, big-endian):
//! - `t | 'T' | kind | due (ordered i64) | node length u16 | node | key` -> payload: the queue;
//! - `t | 'I' | kind | node length u16 | node | key` -> due: finds a timer to move or cancel;
//! - `t | 'S'` -> stream time, so stream-time timers resume where they were after a restart.
//!
//! Firing claims one timer at a time (deleting both entries) right before its callback, so a
//! callback that cancels or moves a later timer of the same batch is honoured.
//!
//! The index is the truth; a queue entry fires only if the index names its due time. Neither
//! scheduling nor [`cancel_due`] reads the index (a point read per timer was a visible share
//! of the saga's CPU), so a move leaves the old queue entry behind, *stale*: when it comes due,
//! [`claim`] finds the index naming another time (or nothing), deletes it and does not fire it.
//!
//! A *fixed* timer ([`write_fixed`]) is one queue entry and no index: it is named by its key
//! *and* due time, never moves, and is cancelled by naming both. Its queue
//! key sets the top bit of the node length (a node name is far shorter than 32 KiB), so
//! [`claim`] knows to fire it without an index read. Half the writes of an indexed timer:
//! the inventory's reservation expiries, one per order line, were a third of all the entries
//! the saga wrote to fjall.

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

/// Set in a queue key's node length for a fixed timer (module doc).
const FIXED_FLAG: u16 = 0x8000;

fn node_and_key(out: &mut Vec<u8>, node: &str, key: &[u8]) {
    node_and_key_flagged(out, node, key, 0);
}

fn node_and_key_flagged(out: &mut Vec<u8>, node: &str, key: &[u8], flag: u16) {
    assert!(
        node.len() < FIXED_FLAG as usize,
        "processor name of {} bytes: timers take names below 32 KiB",
        node.len()
    );
    out.extend_from_slice(&(node.len() as u16 | flag).to_be_bytes());
    out.extend_from_slice(node.as_bytes());
    out.extend_from_slice(key);
}

/// The key prefix of one task's timers: sub-topology and partition, big-endian.
pub(crate) fn task_prefix(sub_topology: usize, partition: u32) -> [u8; 8] {
    let mut prefix = [0u8; 8];
    prefix[..4].copy_from_slice(&(sub_topology as u32).to_be_bytes());
    prefix[4..].copy_from_slice(&partition.to_be_bytes());
    prefix
}

const PREFIX_LENGTH: usize = 8;

fn queue_key(prefix: &[u8; 8], kind: TimerKind, due: i64, node: &str, key: &[u8]) -> Vec<u8> {
    queue_key_of(prefix, kind, due, node, key, false)
}

fn queue_key_of(
    prefix: &[u8; 8],
    kind: TimerKind,
    due: i64,
    node: &str,
    key: &[u8],
    fixed: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + node.len() + key.len());
    out.extend_from_slice(prefix);
    out.push(b'T');
    out.push(kind.tag());
    out.extend_from_slice(&encode_i64_ordered(due));
    node_and_key_flagged(&mut out, node, key, if fixed { FIXED_FLAG } else { 0 });
    out
}

fn index_key(prefix: &[u8; 8], kind: TimerKind, node: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + node.len() + key.len());
    out.extend_from_slice(prefix);
    out.push(b'I');
    out.push(kind.tag());
    node_and_key(&mut out, node, key);
    out
}

pub(crate) fn stream_time_key(prefix: &[u8; 8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.push(b'S');
    out
}

/// Whether a key of the timer keyspace is a due-queue entry (not an index entry or a
/// stream-time hint).
pub(crate) fn is_queue_key(encoded: &[u8]) -> bool {
    encoded.get(PREFIX_LENGTH) == Some(&b'T')
}

/// Splits a due-queue key into (due, node, timer key, fixed).
fn parse_queue_key(encoded: &[u8]) -> Option<(i64, &str, &[u8], bool)> {
    let due_start = PREFIX_LENGTH + 2;
    let due = decode_i64_ordered(encoded.get(due_start..due_start + 8)?.try_into().ok()?);
    let node_start = due_start + 10;
    let flagged_length =
        u16::from_be_bytes(encoded.get(due_start + 8..node_start)?.try_into().ok()?);
    let fixed = flagged_length & FIXED_FLAG != 0;
    let node_length = (flagged_length & !FIXED_FLAG) as usize;
    let node = std::str::from_utf8(encoded.get(node_start..node_start + node_length)?).ok()?;
    let key = encoded.get(node_start + node_length..)?;
    Some((due, node, key, fixed))
}

/// A timer found due by [`due`], for [`claim`].
#[derive(Debug)]
pub(crate) struct DueTimer {
    pub(crate) node: String,
    /// A fixed timer ([`write_fixed`]): no index to check or delete.
    pub(crate) fixed: bool,
    pub(crate) timer: FiredTimer,
}

/// Per timer kind, a time before which none of a task's timers is due: a round whose time is
/// earlier skips the queue scan (an LSM range scan per kind per task per round, a visible share
/// of a busy thread). It may only ever be too early, never too late: it starts unknown
/// (`i64::MIN`, scan), a scan sets it to the first timer it leaves in the queue, and scheduling
/// lowers it. Cancelling leaves it alone, and so does a rolled-back schedule (one useless
/// scan). A restarted task starts unknown again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NextDue([i64; 2]);

impl Default for NextDue {
    fn default() -> Self {
        Self([i64::MIN; 2])
    }
}

impl NextDue {
    pub(crate) fn get(&self, kind: TimerKind) -> i64 {
        self.0[kind.tag() as usize]
    }

    fn set(&mut self, kind: TimerKind, due_ms: i64) {
        self.0[kind.tag() as usize] = due_ms;
    }

    fn lower_to(&mut self, kind: TimerKind, due_ms: i64) {
        let slot = &mut self.0[kind.tag() as usize];
        *slot = (*slot).min(due_ms);
    }
}

pub(crate) fn schedule(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
    due_ms: i64,
    payload: Vec<u8>,
) -> Result<(), ProcessError> {
    // No read of the old due time: an earlier queue entry of this timer goes stale (module doc).
    core.next_due.lower_to(kind, due_ms);
    let space = core.timer_space;
    for (entry, value) in indexed_entries(&core.timer_prefix, kind, node, key, due_ms, payload) {
        core.transaction.write(space, entry, Some(value));
    }
    Ok(())
}

/// The two entries of an indexed timer: (queue key, payload) and (index key, due time).
pub(crate) fn indexed_entries(
    prefix: &[u8; 8],
    kind: TimerKind,
    node: &str,
    key: &[u8],
    due_ms: i64,
    payload: Vec<u8>,
) -> [(Vec<u8>, Vec<u8>); 2] {
    [
        (queue_key(prefix, kind, due_ms, node, key), payload),
        (
            index_key(prefix, kind, node, key),
            encode_i64_ordered(due_ms).to_vec(),
        ),
    ]
}

pub(crate) fn cancel(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
) -> Result<(), ProcessError> {
    let space = core.timer_space;
    let index = index_key(&core.timer_prefix, kind, node, key);
    let Some(due) = core.transaction.get(space, &index)? else {
        return Ok(());
    };
    let due: [u8; 8] = due
        .as_slice()
        .try_into()
        .map_err(|_| ProcessError::invalid("corrupt timer index entry"))?;
    let due = decode_i64_ordered(due);
    core.transaction.write(
        space,
        queue_key(&core.timer_prefix, kind, due, node, key),
        None,
    );
    core.transaction.write(space, index, None);
    Ok(())
}

/// Cancels a timer the caller knows to be due at `due_ms`, without reading the index. A wrong
/// `due_ms` still cancels it (the index goes; its queue entry goes stale) and only leaves that
/// entry for [`claim`] to delete when it comes due.
pub(crate) fn cancel_due(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
    due_ms: i64,
) {
    let space = core.timer_space;
    let prefix = core.timer_prefix;
    core.transaction
        .write(space, queue_key(&prefix, kind, due_ms, node, key), None);
    core.transaction
        .write(space, index_key(&prefix, kind, node, key), None);
}

/// Writes a fixed timer (module doc), one queue entry and no index, with no read: `Some`
/// schedules it (the same key at another time is a second timer; at the same time, the
/// payload is replaced), `None` cancels the one due at `due_ms`, leaving any other time and
/// any indexed timer of that key alone.
pub(crate) fn write_fixed(
    core: &mut TaskCore,
    node: &str,
    kind: TimerKind,
    key: &[u8],
    due_ms: i64,
    payload: Option<Vec<u8>>,
) {
    if payload.is_some() {
        core.next_due.lower_to(kind, due_ms);
    }
    let queue = queue_key_of(&core.timer_prefix, kind, due_ms, node, key, true);
    core.transaction.write(core.timer_space, queue, payload);
}

/// The timers of `kind` due at or before `up_to`, in due order, at most `limit`; nothing is
/// removed: [`claim`] each one just before firing it. Skips the scan when the task's
/// [`NextDue`] says nothing is due yet, and moves it to the first timer the scan leaves.
pub(crate) fn due(
    core: &mut TaskCore,
    kind: TimerKind,
    up_to: i64,
    limit: usize,
) -> Result<Vec<DueTimer>, ProcessError> {
    if up_to < core.next_due.get(kind) {
        return Ok(Vec::new());
    }
    let mut lower = core.timer_prefix.to_vec();
    lower.extend_from_slice(&[b'T', kind.tag()]);
    // The whole queue of this kind: the first entry past `up_to` ends the scan and tells
    // when to look again.
    let upper = orderflow_state_stores::prefix_upper_bound(&lower)
        .expect("a queue prefix ends in a kind tag below 0xff");
    let mut due = Vec::new();
    let mut next_due = i64::MAX;
    core.transaction.scan(
        core.timer_space,
        Bound::Included(&lower),
        Bound::Excluded(&upper),
        &mut |encoded, payload| {
            let Some((due_ms, node, key, fixed)) = parse_queue_key(encoded) else {
                return ControlFlow::Continue(());
            };
            if due_ms > up_to {
                next_due = due_ms;
                return ControlFlow::Break(());
            }
            if due.len() >= limit {
                // More are due than one batch takes: look again next round.
                next_due = i64::MIN;
                return ControlFlow::Break(());
            }
            due.push(DueTimer {
                node: node.to_string(),
                fixed,
                timer: FiredTimer {
                    kind,
                    key: key.to_vec(),
                    due_ms,
                    payload: payload.to_vec(),
                },
            });
            ControlFlow::Continue(())
        },
    )?;
    core.next_due.set(kind, next_due);
    Ok(due)
}

/// Removes a due timer before its callback runs. `Ok(false)`: it must not fire, because it was
/// cancelled or moved (by an earlier callback of the same batch, or long ago, leaving a stale
/// queue entry, which goes now). A fixed timer fires if its queue entry is still there.
pub(crate) fn claim(core: &mut TaskCore, due: &DueTimer) -> Result<bool, ProcessError> {
    let DueTimer { node, fixed, timer } = due;
    let space = core.timer_space;
    let queue = queue_key_of(
        &core.timer_prefix,
        timer.kind,
        timer.due_ms,
        node,
        &timer.key,
        *fixed,
    );
    if *fixed {
        // An earlier callback of the same batch may have cancelled it.
        let still_due = core.transaction.get(space, &queue)?.is_some();
        core.transaction.write(space, queue, None);
        return Ok(still_due);
    }
    let index = index_key(&core.timer_prefix, timer.kind, node, &timer.key);
    let still_due = core
        .transaction
        .get(space, &index)?
        .is_some_and(|due| due.as_slice() == encode_i64_ordered(timer.due_ms).as_slice());
    core.transaction.write(space, queue, None);
    if still_due {
        core.transaction.write(space, index, None);
    }
    Ok(still_due)
}
