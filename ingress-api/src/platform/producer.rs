//! The command producer: appends the API's commands to the log on a dedicated thread, with
//! group commit.
//!
//! Appending is blocking (with `durability = "fsync"` it waits for the disk), and async code
//! never blocks, so handlers hand records to this thread and await the offsets. The thread
//! takes every request waiting at the moment and appends them in ONE batch: under load, one
//! fsync serves many requests, and under light load a request waits for no one.

use std::sync::Arc;
use std::sync::mpsc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderflow_runtime::log::{OffsetDependentWrites, StatefulAppend};
use orderflow_runtime::{LogBackend, LogError, LogRecord};
use orderflow_state_stores::WriteBatch;
use tokio::sync::oneshot;

use crate::platform::order_intake::InFlightClaim;

/// Where a command landed: the read-your-writes token of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

impl Position {
    /// The opaque token clients pass back as `?position=`.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", self.topic, self.partition, self.offset))
    }

    pub fn parse_token(token: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.rsplitn(3, ':');
        let offset = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let topic = parts.next()?.to_string();
        Some(Self {
            topic,
            partition,
            offset,
        })
    }
}

type Reply = oneshot::Sender<Result<Vec<u64>, String>>;

struct ProduceRequest {
    records: Vec<(String, u32, LogRecord)>,
    /// State written in the same atomic write as the records (the order intake's).
    state: WriteBatch,
    offset_dependent: Option<OffsetDependentWrites>,
    /// Held until the write is durable or has failed, even if the request's client is gone.
    claim: Option<InFlightClaim>,
    reply: Reply,
}

/// Records and the state to write with them.
#[derive(Default)]
pub struct Produce {
    pub records: Vec<(String, u32, LogRecord)>,
    pub state: WriteBatch,
    pub offset_dependent: Option<OffsetDependentWrites>,
    pub claim: Option<InFlightClaim>,
}

impl std::fmt::Debug for Produce {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Produce")
            .field("records", &self.records.len())
            .field("state", &self.state.len())
            .field("offset_dependent", &self.offset_dependent.is_some())
            .field("claim", &self.claim)
            .finish()
    }
}

impl From<StatefulAppend> for Produce {
    fn from(append: StatefulAppend) -> Self {
        Self {
            records: append.records,
            state: append.state,
            offset_dependent: append.offset_dependent,
            claim: None,
        }
    }
}

/// A handle to the producer thread; clones share it.
#[derive(Debug, Clone)]
pub struct CommandProducer {
    requests: mpsc::Sender<ProduceRequest>,
}

/// Why a produce failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("appending to the log: {0}")]
    Log(String),
    #[error("the producer thread has stopped")]
    Stopped,
}

/// Appends one group of requests as ONE write: their records, and their state if any, so the
/// group lands whole or not at all.
fn append_group(
    log: &dyn LogBackend,
    records: Vec<(String, u32, LogRecord)>,
    state: WriteBatch,
    dependents: Vec<(usize, usize, OffsetDependentWrites)>,
) -> Result<Vec<u64>, LogError> {
    if state.is_empty() && dependents.is_empty() {
        return log.produce(records);
    }
    let offset_dependent: OffsetDependentWrites =
        Box::new(move |offsets: &[u64], batch: &mut WriteBatch| {
            for (start, count, write) in dependents {
                write(&offsets[start..start + count], batch);
            }
        });
    log.produce_with_state(vec![StatefulAppend {
        records,
        state,
        offset_dependent: Some(offset_dependent),
    }])
    .pop()
    .expect("one result per append")
}

impl CommandProducer {
    /// Starts the thread; it ends when every handle is dropped.
    pub fn start(log: Arc<dyn LogBackend>) -> Self {
        let (requests, receiver) = mpsc::channel::<ProduceRequest>();
        std::thread::Builder::new()
            .name("orderflow-ingress-producer".to_string())
            .spawn(move || {
                let mut held_after_sync_failure = Vec::new();
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    while let Ok(next) = receiver.try_recv() {
                        batch.push(next);
                        if batch.len() >= 1024 {
                            break;
                        }
                    }
                    let total = batch.iter().map(|request| request.records.len()).sum();
                    let mut records = Vec::with_capacity(total);
                    let mut state = WriteBatch::new();
                    let mut dependents = Vec::new();
                    let mut sizes = Vec::with_capacity(batch.len());
                    let mut replies = Vec::with_capacity(batch.len());
                    let mut claims = Vec::new();
                    for request in batch {
                        let size = request.records.len();
                        if let Some(write) = request.offset_dependent {
                            dependents.push((records.len(), size, write));
                        }
                        records.extend(request.records);
                        state.append(request.state);
                        claims.extend(request.claim);
                        sizes.push(size);
                        replies.push(request.reply);
                    }
                    let result = append_group(log.as_ref(), records, state, dependents);
                    if matches!(result, Err(LogError::Sync { .. })) {
                        // Written but maybe not on disk, and the log refuses writes from now
                        // on: the keys stay claimed (409) rather than replay a response a
                        // restart may take back.
                        held_after_sync_failure.extend(claims);
                    } else {
                        // Released before the answers: a retry that follows an answer finds
                        // the key's record, not a claim.
                        drop(claims);
                    }
                    match result {
                        Ok(offsets) => {
                            let mut offsets = offsets.into_iter();
                            for (reply, size) in replies.into_iter().zip(sizes) {
                                let _ = reply.send(Ok(offsets.by_ref().take(size).collect()));
                            }
                        }
                        Err(error) => {
                            let message = error.to_string();
                            tracing::error!(error = %message, "appending ingress commands failed");
                            for reply in replies {
                                let _ = reply.send(Err(message.clone()));
                            }
                        }
                    }
                }
            })
            .expect("spawning the ingress producer thread");
        Self { requests }
    }

    /// Appends the records durably; returns where each landed.
    pub async fn produce(
        &self,
        records: Vec<(String, u32, LogRecord)>,
    ) -> Result<Vec<Position>, ProduceError> {
        self.produce_with(Produce {
            records,
            ..Produce::default()
        })
        .await
    }

    /// Appends the records and their state in one durable write; returns where each record
    /// landed. The claim is released once the write is done, whether this future is awaited
    /// to the end or dropped.
    pub async fn produce_with(&self, produce: Produce) -> Result<Vec<Position>, ProduceError> {
        let placement: Vec<(String, u32)> = produce
            .records
            .iter()
            .map(|(topic, partition, _)| (topic.clone(), *partition))
            .collect();
        let (reply, response) = oneshot::channel();
        self.requests
            .send(ProduceRequest {
                records: produce.records,
                state: produce.state,
                offset_dependent: produce.offset_dependent,
                claim: produce.claim,
                reply,
            })
            .map_err(|_| ProduceError::Stopped)?;
        let offsets = response
            .await
            .map_err(|_| ProduceError::Stopped)?
            .map_err(ProduceError::Log)?;
        Ok(placement
            .into_iter()
            .zip(offsets)
            .map(|((topic, partition), offset)| Position {
                topic,
                partition,
                offset,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_tokens_round_trip_and_reject_garbage() {
        let position = Position {
            topic: "order-commands".to_string(),
            partition: 4,
            offset: 1234,
        };
        assert_eq!(Position::parse_token(&position.token()), Some(position));
        assert_eq!(Position::parse_token("not base64!"), None);
        assert_eq!(Position::parse_token(&URL_SAFE_NO_PAD.encode("a:b")), None);
    }
}
