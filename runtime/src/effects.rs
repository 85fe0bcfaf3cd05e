//! Side effects: how a pure processor gets I/O done (charging a card, sending an e-mail).
//!
//! A processor never calls a provider. It forwards an *effect request* record to a request
//! topic, in the same commit as the state change that decided on it. An effect executor, run by
//! the runtime on its own thread, reads the request topic, calls the [`EffectHandler`] (which
//! may block on the network), and appends the handler's *result* record to a result topic,
//! committing its request position with the result in one batch. The processor consumes the
//! result topic like any other input and decides what happens next (success, retry on a
//! durable timer, failure).
//!
//! Delivery: a crash after the handler ran but before the commit runs the handler again for
//! that request, so handlers must be idempotent, typically by passing an idempotency key that
//! the request carries to the provider. Results are exactly-once.

use std::sync::Arc;

use crate::clock::Clock;
use crate::dead_letter::{self, Failure, FailureStage};
use crate::error::RuntimeError;
use crate::log::{LogBackend, LogTransaction};
use crate::partitioner::partition_for_key;
use crate::record::LogRecord;

/// Performs one kind of side effect. Runs on an executor thread and may block.
pub trait EffectHandler: Send + Sync + 'static {
    /// Performs the request and returns the result record (`None` for exports, which have no
    /// result topic). `Err` means the request itself is unusable (it goes to the dead-letter
    /// topic); provider failures belong in the result.
    fn execute(&self, request: &LogRecord) -> Result<Option<LogRecord>, String>;

    /// Makes what [`Self::execute`] did so far durable. The executor calls it once per batch,
    /// before it commits its position past the batch's requests, so a handler that writes
    /// (an export) can sync once per batch instead of once per request. `Err`: nothing of the
    /// batch is committed, and its requests run again (at least once, as after a crash).
    fn flush(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A declared effect executor.
#[derive(Clone)]
pub(crate) struct EffectDefinition {
    pub name: String,
    pub request_topic: String,
    /// `None` for an export: the handler's work is the whole effect.
    pub result_topic: Option<String>,
    pub handler: Arc<dyn EffectHandler>,
}

/// The consumer group of an effect executor.
pub fn effect_group(application_id: &str, effect: &str) -> String {
    format!("{application_id}.effect.{effect}")
}

/// Executes the requests of one effect.
pub(crate) struct EffectTask {
    definition: EffectDefinition,
    group: String,
    application_id: String,
    positions: Vec<u64>,
    result_partitions: u32,
    poll_batch: usize,
    clock: Arc<dyn Clock>,
}

impl EffectTask {
    /// The topic whose records are this executor's requests.
    pub fn request_topic(&self) -> &str {
        &self.definition.request_topic
    }

    pub fn open(
        definition: EffectDefinition,
        application_id: &str,
        log: &dyn LogBackend,
        poll_batch: usize,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RuntimeError> {
        let group = effect_group(application_id, &definition.name);
        let unknown = |topic: &str| crate::error::LogError::UnknownTopic {
            topic: topic.to_string(),
        };
        let request_partitions = log
            .topic(&definition.request_topic)
            .ok_or_else(|| unknown(&definition.request_topic))?
            .partitions;
        let result_partitions = match &definition.result_topic {
            Some(topic) => log.topic(topic).ok_or_else(|| unknown(topic))?.partitions,
            None => 1,
        };
        let mut positions = Vec::new();
        for partition in 0..request_partitions {
            positions.push(
                match log.committed_position(&group, &definition.request_topic, partition)? {
                    Some(position) => position,
                    None => log.offsets(&definition.request_topic, partition)?.log_start,
                },
            );
        }
        Ok(Self {
            definition,
            group,
            application_id: application_id.to_string(),
            positions,
            result_partitions,
            poll_batch,
            clock,
        })
    }

    /// Executes one batch of requests per partition and commits their results.
    pub fn poll(&mut self, log: &dyn LogBackend) -> Result<usize, RuntimeError> {
        let mut handled = 0;
        let request_topic = self.definition.request_topic.clone();
        for partition in 0..self.positions.len() {
            let partition_id = partition as u32;
            let end = log.offsets(&request_topic, partition_id)?.end;
            if self.positions[partition] >= end {
                continue;
            }
            let requests = log.fetch(
                &request_topic,
                partition_id,
                self.positions[partition],
                self.poll_batch,
            )?;
            // A short fetch returned everything below `end`; missing offsets are gaps. It may
            // also have returned records committed after `end` was read: the position moves past
            // the last one executed, never back onto it (that executed a request twice).
            let after_last = requests.last().map_or(0, |last| last.offset + 1);
            let next_position = if requests.len() >= self.poll_batch {
                after_last
            } else {
                end.max(after_last)
            };
            let mut outputs = Vec::with_capacity(requests.len());
            for stored in &requests {
                match self.definition.handler.execute(&stored.record) {
                    Ok(None) => {}
                    Ok(Some(result)) => {
                        let Some(result_topic) = &self.definition.result_topic else {
                            return Err(RuntimeError::Config {
                                field: "effects",
                                reason: format!(
                                    "export `{}` returned a result but has no result topic",
                                    self.definition.name
                                ),
                            });
                        };
                        let target = match &result.key {
                            Some(key) => partition_for_key(key, self.result_partitions),
                            None => partition_id % self.result_partitions,
                        };
                        outputs.push((result_topic.clone(), target, result));
                    }
                    Err(error) => {
                        tracing::warn!(
                            effect = %self.definition.name,
                            partition,
                            offset = stored.offset,
                            error = %error,
                            "effect request sent to the dead-letter topic"
                        );
                        outputs.push((
                            orderflow_schemas::topic::dead_letter_topic_name(&request_topic),
                            partition_id,
                            dead_letter::dead_letter(
                                stored,
                                &Failure {
                                    application_id: &self.application_id,
                                    topic: &request_topic,
                                    partition: partition_id,
                                    node: &self.definition.name,
                                    stage: FailureStage::Process,
                                    error,
                                    failed_at_ms: self.clock.now_ms(),
                                },
                            ),
                        ));
                    }
                }
            }
            handled += requests.len();
            if let Err(error) = self.definition.handler.flush() {
                tracing::warn!(
                    effect = %self.definition.name,
                    partition,
                    error = %error,
                    "an effect could not make its batch durable; its requests run again"
                );
                continue;
            }
            log.commit(LogTransaction {
                group: self.group.clone(),
                outputs,
                positions: vec![(request_topic.clone(), partition_id, next_position)],
                state: Default::default(),
            })?;
            self.positions[partition] = next_position;
        }
        Ok(handled)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use orderflow_schemas::topic::TopicSpec;
    use orderflow_state_stores::{CheckpointEntry, StorageEngine};

    use super::*;
    use crate::EmbeddedLog;
    use crate::clock::SystemClock;
    use crate::error::LogError;
    use crate::log::{PartitionOffsets, RecordListener, Visibility};
    use crate::record::StoredRecord;

    /// The embedded log, except that once armed, reading the request topic's offsets commits
    /// one more request right after: the end the effect task read is already stale when it
    /// fetches, as when a producer commits between the two calls.
    #[derive(Debug)]
    struct RacingLog {
        inner: EmbeddedLog,
        armed: AtomicBool,
    }

    fn request(value: &str) -> LogRecord {
        LogRecord::new(Some(b"k".to_vec()), Some(value.as_bytes().to_vec()), 1)
    }

    impl LogBackend for RacingLog {
        fn create_topic(&self, spec: &TopicSpec) -> Result<(), LogError> {
            self.inner.create_topic(spec)
        }
        fn topic(&self, name: &str) -> Option<TopicSpec> {
            self.inner.topic(name)
        }
        fn topics(&self) -> Vec<TopicSpec> {
            self.inner.topics()
        }
        fn fetch(
            &self,
            topic: &str,
            partition: u32,
            from: u64,
            max: usize,
        ) -> Result<Vec<StoredRecord>, LogError> {
            self.inner.fetch(topic, partition, from, max)
        }
        fn offsets(&self, topic: &str, partition: u32) -> Result<PartitionOffsets, LogError> {
            let offsets = self.inner.offsets(topic, partition)?;
            if topic == "requests" && self.armed.swap(false, Ordering::SeqCst) {
                self.inner
                    .produce(vec![("requests".into(), 0, request("late"))])?;
            }
            Ok(offsets)
        }
        fn produce(&self, records: Vec<(String, u32, LogRecord)>) -> Result<Vec<u64>, LogError> {
            self.inner.produce(records)
        }
        fn commit(&self, transaction: LogTransaction) -> Result<(), LogError> {
            self.inner.commit(transaction)
        }
        fn committed_position(
            &self,
            group: &str,
            topic: &str,
            partition: u32,
        ) -> Result<Option<u64>, LogError> {
            self.inner.committed_position(group, topic, partition)
        }
        fn group_positions(&self) -> Result<Vec<CheckpointEntry>, LogError> {
            self.inner.group_positions()
        }
        fn generation(&self) -> u64 {
            self.inner.generation()
        }
        fn wait_for_records(&self, seen: u64, timeout: Duration) {
            self.inner.wait_for_records(seen, timeout)
        }
        fn wake_all(&self) {
            self.inner.wake_all()
        }
        fn listen(&self, topics: &[String], visibility: Visibility) -> Arc<dyn RecordListener> {
            self.inner.listen(topics, visibility)
        }
        fn state_engine(&self) -> &StorageEngine {
            self.inner.state_engine()
        }
    }

    /// Records every request it executes, and every flush; the first `.1` flushes fail.
    struct Recorder(Mutex<Vec<String>>, AtomicU64);

    impl EffectHandler for Recorder {
        fn execute(&self, request: &LogRecord) -> Result<Option<LogRecord>, String> {
            let value = String::from_utf8_lossy(request.value.as_deref().unwrap_or_default());
            self.0.lock().unwrap().push(value.into_owned());
            Ok(Some(request.clone()))
        }

        fn flush(&self) -> Result<(), String> {
            self.0.lock().unwrap().push("flush".to_string());
            let failing = self.1.load(Ordering::SeqCst);
            if failing > 0 {
                self.1.store(failing - 1, Ordering::SeqCst);
                return Err("the disk said no".to_string());
            }
            Ok(())
        }
    }

    /// An executor of the "record" effect: "requests" to "results", batches of 100.
    fn record_task(log: &dyn LogBackend, recorder: &Arc<Recorder>) -> EffectTask {
        let definition = EffectDefinition {
            name: "record".to_string(),
            request_topic: "requests".to_string(),
            result_topic: Some("results".to_string()),
            handler: recorder.clone(),
        };
        EffectTask::open(definition, "app", log, 100, Arc::new(SystemClock)).unwrap()
    }

    /// A batch is flushed once, after its requests and before the position moves past them;
    /// a failed flush commits nothing, so the batch runs again.
    #[test]
    fn a_batch_is_flushed_before_its_commit_and_runs_again_if_the_flush_fails() {
        let log = EmbeddedLog::in_memory();
        log.create_topic(&TopicSpec::new("requests", 1)).unwrap();
        log.create_topic(&TopicSpec::new("results", 1)).unwrap();
        log.produce(vec![
            ("requests".into(), 0, request("a")),
            ("requests".into(), 0, request("b")),
        ])
        .unwrap();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new()), AtomicU64::new(1)));
        let mut task = record_task(&log, &recorder);
        task.poll(&log).unwrap();
        assert_eq!(
            log.offsets("results", 0).unwrap().end,
            0,
            "nothing committed"
        );
        assert_eq!(
            log.committed_position(&effect_group("app", "record"), "requests", 0)
                .unwrap(),
            None
        );
        while task.poll(&log).unwrap() > 0 {}
        assert_eq!(
            *recorder.0.lock().unwrap(),
            ["a", "b", "flush", "a", "b", "flush"].map(String::from),
            "one flush per batch, after its requests; the failed batch ran again"
        );
        assert_eq!(log.offsets("results", 0).unwrap().end, 2);
        assert_eq!(
            log.committed_position(&effect_group("app", "record"), "requests", 0)
                .unwrap(),
            Some(2)
        );
    }

    #[test]
    fn a_request_committed_between_reading_the_end_and_fetching_runs_once() {
        let log = RacingLog {
            inner: EmbeddedLog::in_memory(),
            armed: AtomicBool::new(false),
        };
        log.create_topic(&TopicSpec::new("requests", 1)).unwrap();
        log.create_topic(&TopicSpec::new("results", 1)).unwrap();
        log.produce(vec![("requests".into(), 0, request("first"))])
            .unwrap();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new()), AtomicU64::new(0)));
        let mut task = record_task(&log, &recorder);
        log.armed.store(true, Ordering::SeqCst);
        while task.poll(&log).unwrap() > 0 {}
        let executed: Vec<String> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|entry| *entry != "flush")
            .cloned()
            .collect();
        assert_eq!(
            executed,
            vec!["first".to_string(), "late".to_string()],
            "each request executed exactly once"
        );
        assert_eq!(log.offsets("results", 0).unwrap().end, 2);
    }
}
