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
            // A short fetch returned everything below `end`; missing offsets are gaps.
            let next_position = match requests.last() {
                Some(last) if requests.len() >= self.poll_batch => last.offset + 1,
                _ => end,
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
