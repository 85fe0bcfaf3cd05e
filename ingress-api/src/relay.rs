//! The outbox relay task: moves user events from the SQL outbox to `user-events`, exactly
//! once (the protocol is in [`crate::db::outbox`]).

use std::sync::Arc;
use std::time::Duration;

use orderflow_runtime::log::LogTransaction;
use orderflow_schemas::catalog::USER_EVENTS;
use orderflow_schemas::ids::CorrelationId;
use orderflow_state_stores::WriteBatch;

use crate::api::command_record;
use crate::state::AppState;

/// The consumer group whose position is the next outbox seq to relay.
pub const OUTBOX_GROUP: &str = "orderflow-ingress-outbox";
/// The pseudo-topic naming the outbox in that group's positions.
pub const OUTBOX_SOURCE: &str = "sql.user-outbox";

const BATCH: i64 = 500;

/// Relays until the state is dropped by everyone else; wakes on `outbox_signal` or every
/// 500 ms (rows written by another instance).
pub async fn run(state: Arc<AppState>) {
    let mut next_seq = match state.log.committed_position(OUTBOX_GROUP, OUTBOX_SOURCE, 0) {
        Ok(position) => position.map_or(0, |next| next as i64),
        Err(error) => {
            tracing::error!(%error, "outbox relay cannot read its position; not relaying");
            return;
        }
    };
    loop {
        match relay_once(&state, next_seq).await {
            Ok(Some(next)) => {
                next_seq = next;
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "outbox relay failed; retrying"),
        }
        if Arc::strong_count(&state) <= 1 {
            return;
        }
        let _ =
            tokio::time::timeout(Duration::from_millis(500), state.outbox_signal.notified()).await;
    }
}

/// Relays one batch; returns the next seq, or `None` when the outbox was empty.
pub async fn relay_once(state: &Arc<AppState>, from_seq: i64) -> Result<Option<i64>, String> {
    let rows = state
        .database
        .outbox_from(from_seq, BATCH)
        .await
        .map_err(|error| error.to_string())?;
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let next_seq = last.seq + 1;
    let mut outputs = Vec::with_capacity(rows.len());
    for row in &rows {
        outputs.push(
            command_record(
                state,
                USER_EVENTS,
                row.event.clone(),
                CorrelationId::generate(row.created_at_ms),
            )
            .map_err(|error| format!("{error:?}"))?,
        );
    }
    let transaction = LogTransaction {
        group: OUTBOX_GROUP.to_string(),
        outputs,
        positions: vec![(OUTBOX_SOURCE.to_string(), 0, next_seq as u64)],
        state: WriteBatch::new(),
    };
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || log.commit(transaction))
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    if let Err(error) = state.database.prune_outbox(next_seq).await {
        tracing::warn!(%error, "pruning the outbox failed; relayed rows stay until next time");
    }
    Ok(Some(next_seq))
}
