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
use orderflow_runtime::{LogBackend, LogRecord};
use tokio::sync::oneshot;

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
    reply: Reply,
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

impl CommandProducer {
    /// Starts the thread; it ends when every handle is dropped.
    pub fn start(log: Arc<dyn LogBackend>) -> Self {
        let (requests, receiver) = mpsc::channel::<ProduceRequest>();
        std::thread::Builder::new()
            .name("orderflow-ingress-producer".to_string())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    while let Ok(next) = receiver.try_recv() {
                        batch.push(next);
                        if batch.len() >= 1024 {
                            break;
                        }
                    }
                    let sizes: Vec<usize> =
                        batch.iter().map(|request| request.records.len()).collect();
                    let mut records = Vec::with_capacity(sizes.iter().sum());
                    let mut replies = Vec::with_capacity(batch.len());
                    for request in batch {
                        records.extend(request.records);
                        replies.push(request.reply);
                    }
                    match log.produce(records) {
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
        let placement: Vec<(String, u32)> = records
            .iter()
            .map(|(topic, partition, _)| (topic.clone(), *partition))
            .collect();
        let (reply, response) = oneshot::channel();
        self.requests
            .send(ProduceRequest { records, reply })
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
