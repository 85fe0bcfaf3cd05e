//! Running a topology: stream threads, task restarts, graceful shutdown.
//!
//! # Threads and tasks
//! Each sub-topology has one task per input partition. Tasks are spread round-robin over the
//! stream threads; a thread loops over its tasks: poll (fetch, process, fire timers), commit
//! when the interval or record limit is reached or as soon as the task has caught up with its
//! inputs, and wait for new records when idle.
//!
//! # Failure protocol
//! A processor that returns an error dead-letters its record and the task goes on. A processor
//! that panics fails only its task: the task's uncommitted work is dropped, and after a backoff
//! (doubling from `restart-backoff-initial-ms` to `restart-backoff-max-ms`) the task reopens at
//! its last commit. The record that was in flight is remembered; once it has panicked
//! `max-panics-per-record` times it is dead-lettered instead of processed, so one poison record
//! cannot stop a partition. An I/O error of the log or the stores stops the thread and is
//! reported by [`RunningApp::shutdown`].
//!
//! # Shutdown protocol
//! [`RunningApp::shutdown`] stops the threads at their next loop turn; each commits its tasks'
//! in-flight work, then the database is flushed. A restart resumes exactly after the last commit.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::log::{LogBackend, Visibility};
use crate::metrics::MetricsRegistry;
use crate::side_tasks::SideTasks;
use crate::task::{InFlight, Task, TaskId};
use crate::topology::Topology;

/// Creates every topic a topology uses, and the dead-letter topic of each source topic.
pub fn create_topics(topology: &Topology, log: &dyn LogBackend) -> Result<(), RuntimeError> {
    for spec in topology.topics() {
        log.create_topic(spec)?;
    }
    for consumed_topic in topology.consumed_topics() {
        if let Some(spec) = topology.topic(consumed_topic) {
            log.create_topic(&spec.dead_letter())?;
        }
    }
    Ok(())
}

/// Every task of a topology.
pub fn task_ids(topology: &Topology) -> Vec<TaskId> {
    topology
        .sub_topologies()
        .iter()
        .flat_map(|sub_topology| {
            (0..sub_topology.partitions).map(move |partition| TaskId {
                sub_topology: sub_topology.id,
                partition,
            })
        })
        .collect()
}

/// Records between the committed positions and the ends of everything the application reads:
/// its sources, its global tables' topics and its effects' request topics.
pub fn consumer_lag(
    topology: &Topology,
    log: &dyn LogBackend,
    group: &str,
) -> Result<u64, RuntimeError> {
    // Each consumer against the end it reads to: tasks and global tables the in-process end,
    // effects the durable one (see `Visibility`).
    let mut consumers: Vec<(String, &str, Visibility)> = topology
        .source_topics()
        .into_iter()
        .map(|topic| (group.to_string(), topic, Visibility::InProcess))
        .collect();
    for table in &topology.global_tables {
        consumers.push((
            crate::global::global_table_group(group, &table.name),
            &table.topic,
            Visibility::InProcess,
        ));
    }
    for effect in &topology.effects {
        consumers.push((
            crate::effects::effect_group(group, &effect.name),
            &effect.request_topic,
            Visibility::Durable,
        ));
    }
    let mut lag = 0;
    for (consumer_group, topic, visibility) in consumers {
        let partitions = topology.topic(topic).map_or(0, |spec| spec.partitions);
        for partition in 0..partitions {
            let end = log.end_visible(topic, partition, visibility)?;
            let position = match log.committed_position(&consumer_group, topic, partition)? {
                Some(position) => position,
                None => log.offsets(topic, partition)?.log_start,
            };
            lag += end.saturating_sub(position);
        }
    }
    Ok(lag)
}

/// A running application; dropping it without [`RunningApp::shutdown`] stops it too.
pub struct RunningApp {
    side_thread: Option<JoinHandle<Result<(), RuntimeError>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), RuntimeError>>>,
    live_threads: Arc<AtomicUsize>,
    log: Arc<dyn LogBackend>,
    topology: Arc<Topology>,
    metrics: Arc<MetricsRegistry>,
    config: RuntimeConfig,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunningApp")
            .field("application_id", &self.config.application_id)
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl RunningApp {
    /// Validates the configuration, creates topics and starts the stream threads.
    pub fn start(
        topology: Arc<Topology>,
        log: Arc<dyn LogBackend>,
        config: RuntimeConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<MetricsRegistry>,
    ) -> Result<RunningApp, RuntimeError> {
        config.validate()?;
        create_topics(&topology, log.as_ref())?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut side_tasks = SideTasks::open(&topology, log.as_ref(), &config, clock.clone())?;
        // Like Kafka Streams, global tables are caught up before any stream task runs, so a
        // task never looks up a row that was already in the topic when the app started.
        side_tasks.bootstrap(log.as_ref())?;
        let side_thread = if side_tasks.is_empty() {
            None
        } else {
            let log = log.clone();
            let stop = stop.clone();
            let idle_wait = Duration::from_millis(config.commit_interval_ms.clamp(1, 50));
            // Woken by records for its global tables and effect requests only.
            let side_topics: Vec<String> = topology
                .global_tables
                .iter()
                .map(|table| table.topic.clone())
                .chain(
                    topology
                        .effects
                        .iter()
                        .map(|effect| effect.request_topic.clone()),
                )
                .collect();
            // Durable: effects read only durable requests (global tables read in-process,
            // and are woken a sync later; their topics change rarely).
            let listener = log.listen(&side_topics, Visibility::Durable);
            Some(
                std::thread::Builder::new()
                    .name("orderflow-side".to_string())
                    .spawn(move || -> Result<(), RuntimeError> {
                        while !stop.load(Ordering::SeqCst) {
                            let handled = side_tasks.poll_global_tables(log.as_ref())?
                                + side_tasks.poll_effects(log.as_ref())?;
                            if handled == 0 {
                                listener.wait(idle_wait);
                            }
                        }
                        Ok(())
                    })
                    .map_err(|source| RuntimeError::Thread { thread: 0, source })?,
            )
        };
        let tasks = task_ids(&topology);
        let thread_count = config.resolved_stream_threads().min(tasks.len()).max(1);
        let mut assignments: Vec<Vec<TaskId>> = vec![Vec::new(); thread_count];
        for (position, task) in tasks.into_iter().enumerate() {
            assignments[position % thread_count].push(task);
        }
        let live_threads = Arc::new(AtomicUsize::new(thread_count));
        for (thread_index, assigned) in assignments.into_iter().enumerate() {
            let stream_thread = StreamThread {
                topology: topology.clone(),
                log: log.clone(),
                clock: clock.clone(),
                config: config.clone(),
                metrics: metrics.clone(),
                stop: stop.clone(),
            };
            let live = live_threads.clone();
            let handle = std::thread::Builder::new()
                .name(format!("orderflow-stream-{thread_index}"))
                .spawn(move || {
                    // Counts the thread out however it ends, panics included.
                    let _alive = LiveThreadGuard(live);
                    let result = stream_thread.run(assigned);
                    if let Err(error) = &result {
                        tracing::error!(thread = thread_index, error = %error, "stream thread failed");
                    }
                    result
                })
                .map_err(|source| {
                    stop.store(true, Ordering::SeqCst);
                    RuntimeError::Thread {
                        thread: thread_index,
                        source,
                    }
                })?;
            threads.push(handle);
        }
        Ok(RunningApp {
            side_thread,
            stop,
            threads,
            live_threads,
            log,
            topology,
            metrics,
            config,
        })
    }

    pub fn metrics(&self) -> &Arc<MetricsRegistry> {
        &self.metrics
    }

    pub fn application_id(&self) -> &str {
        &self.config.application_id
    }

    /// Whether every stream thread, and the side-task thread, is still running.
    pub fn is_healthy(&self) -> bool {
        self.live_threads.load(Ordering::SeqCst) == self.threads.len()
            && self
                .side_thread
                .as_ref()
                .is_none_or(|thread| !thread.is_finished())
    }

    /// Records not yet committed as processed, over every input partition.
    pub fn lag(&self) -> Result<u64, RuntimeError> {
        consumer_lag(
            &self.topology,
            self.log.as_ref(),
            &self.config.application_id,
        )
    }

    /// Stops the threads after they commit their in-flight work, and flushes the database.
    pub fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Result<(), RuntimeError> {
        self.stop.store(true, Ordering::SeqCst);
        self.log.wake_all();
        let mut first_error = None;
        for handle in self.threads.drain(..) {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(RuntimeError::Config {
                        field: "stream-threads",
                        reason: "a stream thread panicked outside a task".to_string(),
                    });
                }
            }
        }
        if let Some(side_thread) = self.side_thread.take() {
            match side_thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(RuntimeError::Config {
                        field: "side-tasks",
                        reason: "the side-task thread panicked".to_string(),
                    });
                }
            }
        }
        self.log.state_engine().persist()?;
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if !self.threads.is_empty() || self.side_thread.is_some() {
            let _ = self.stop_threads();
        }
    }
}

struct LiveThreadGuard(Arc<AtomicUsize>);

impl Drop for LiveThreadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct StreamThread {
    topology: Arc<Topology>,
    log: Arc<dyn LogBackend>,
    clock: Arc<dyn Clock>,
    config: RuntimeConfig,
    metrics: Arc<MetricsRegistry>,
    stop: Arc<AtomicBool>,
}

/// A task on a thread, with what its restarts need to remember.
struct TaskSlot {
    id: TaskId,
    task: Option<Task>,
    consecutive_failures: u32,
    resume_at_ms: i64,
    panics: HashMap<InFlight, (u32, String)>,
}

impl StreamThread {
    fn open_task(&self, slot: &TaskSlot) -> Result<Task, RuntimeError> {
        let poisoned = slot
            .panics
            .iter()
            .filter(|(_, (count, _))| *count >= self.config.max_panics_per_record)
            .map(|(record, (count, message))| {
                (
                    record.clone(),
                    format!("processor panicked {count} times: {message}"),
                )
            })
            .collect();
        Task::open(
            self.topology.clone(),
            slot.id,
            self.log.as_ref(),
            self.clock.clone(),
            &self.config,
            &self.metrics,
            poisoned,
        )
    }

    fn run(self, assigned: Vec<TaskId>) -> Result<(), RuntimeError> {
        let mut slots = Vec::with_capacity(assigned.len());
        for id in assigned {
            let mut slot = TaskSlot {
                id,
                task: None,
                consecutive_failures: 0,
                resume_at_ms: 0,
                panics: HashMap::new(),
            };
            slot.task = Some(self.open_task(&slot)?);
            slots.push(slot);
        }
        let idle_wait = Duration::from_millis(self.config.commit_interval_ms.clamp(1, 50));
        let commit_when_caught_up = self.config.commit_when_caught_up;
        // Woken by records for its tasks' inputs only; wall-clock timers and restarts are
        // served by the timeout.
        let mut input_topics: Vec<String> = slots
            .iter()
            .flat_map(|slot| {
                self.topology.sub_topologies[slot.id.sub_topology]
                    .source_topics
                    .iter()
                    .cloned()
            })
            .collect();
        input_topics.sort_unstable();
        input_topics.dedup();
        let listener = self.log.listen(&input_topics, Visibility::InProcess);
        while !self.stop.load(Ordering::SeqCst) {
            let mut handled = 0;
            // Tasks to commit after this round (slot index, records the poll handled).
            let mut due = Vec::new();
            for (index, slot) in slots.iter_mut().enumerate() {
                let now_ms = self.clock.now_ms();
                if slot.task.is_none() {
                    if now_ms < slot.resume_at_ms {
                        continue;
                    }
                    slot.task = Some(self.open_task(slot)?);
                }
                let task = slot.task.as_mut().expect("opened above");
                let log = self.log.as_ref();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| task.poll(log, now_ms)));
                match outcome {
                    Ok(Ok(count)) => {
                        handled += count;
                        // Commit on the interval or record limit, and also as soon as the task
                        // has caught up with its inputs: batching under load, low latency when
                        // not.
                        if task.should_commit(now_ms)
                            || (commit_when_caught_up && task.is_dirty() && task.is_caught_up())
                        {
                            due.push((index, count));
                        }
                    }
                    Ok(Err(error)) => return Err(error),
                    Err(payload) => self.restart_after_panic(slot, payload.as_ref(), now_ms),
                }
            }
            // A panic while committing fails the tasks of the round, not the thread: they reopen
            // from their last commit, as after a panic in a processor.
            let committing: Vec<usize> = due.iter().map(|(index, _)| *index).collect();
            let committed =
                std::panic::catch_unwind(AssertUnwindSafe(|| self.commit_round(&mut slots, due)));
            match committed {
                Ok(result) => result?,
                Err(payload) => {
                    let now_ms = self.clock.now_ms();
                    for index in committing {
                        if slots[index].task.is_some() {
                            self.restart_after_panic(&mut slots[index], payload.as_ref(), now_ms);
                        }
                    }
                }
            }
            if handled == 0 {
                // Until new input, or until the earliest wall-clock timer is due.
                let now_ms = self.clock.now_ms();
                let wait = slots
                    .iter()
                    .filter_map(|slot| slot.task.as_ref()?.next_wall_clock_timer_ms())
                    .min()
                    .map_or(idle_wait, |due_ms| {
                        idle_wait.min(Duration::from_millis(
                            due_ms.saturating_sub(now_ms).max(0) as u64
                        ))
                    });
                listener.wait(wait);
            }
        }
        for slot in &mut slots {
            if let Some(task) = slot.task.as_mut() {
                task.commit(self.log.as_ref())?;
            }
        }
        Ok(())
    }

    /// Commits every task that is due after a round, as ONE group: the embedded log writes
    /// each task's transaction atomically and makes them all durable with one fsync, instead
    /// of the thread waiting out one fsync per task in turn.
    fn commit_round(
        &self,
        slots: &mut [TaskSlot],
        due: Vec<(usize, usize)>,
    ) -> Result<(), RuntimeError> {
        let mut prepared = Vec::with_capacity(due.len());
        let mut transactions = Vec::with_capacity(due.len());
        for (index, count) in due {
            let task = slots[index].task.as_mut().expect("polled this round");
            if let Some((transaction, commit)) = task.prepare_commit() {
                transactions.push(transaction);
                prepared.push((index, count, commit));
            }
        }
        if transactions.is_empty() {
            return Ok(());
        }
        let results = self.log.commit_all(transactions);
        for ((index, count, commit), result) in prepared.into_iter().zip(results) {
            result?;
            let slot = &mut slots[index];
            slot.task
                .as_mut()
                .expect("polled this round")
                .finish_commit(commit);
            if count > 0 {
                slot.consecutive_failures = 0;
            }
        }
        Ok(())
    }

    fn restart_after_panic(
        &self,
        slot: &mut TaskSlot,
        payload: &(dyn std::any::Any + Send),
        now_ms: i64,
    ) {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        let task = slot.task.take().expect("a task panicked, so it existed");
        let in_flight = task.in_flight();
        task.abort();
        if let Some(record) = &in_flight {
            let entry = slot
                .panics
                .entry(record.clone())
                .or_insert((0, message.clone()));
            entry.0 += 1;
        }
        slot.consecutive_failures += 1;
        let exponent = slot.consecutive_failures.saturating_sub(1).min(20);
        let backoff_ms = self
            .config
            .restart_backoff_initial_ms
            .saturating_mul(1u64 << exponent)
            .min(self.config.restart_backoff_max_ms);
        slot.resume_at_ms = now_ms + backoff_ms as i64;
        self.metrics
            .task(&slot.id.to_string())
            .restarts
            .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            task = %slot.id,
            panic = %message,
            record = ?in_flight,
            backoff_ms,
            "task panicked; restarting from its last commit"
        );
    }
}
