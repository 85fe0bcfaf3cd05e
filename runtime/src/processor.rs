//! The processor API: what a processor implements and what its context offers.
//!
//! A processor is pure: it gets one record (or one fired timer) and a context, and everything it
//! does goes through the context: typed state stores, records forwarded to its children, timers
//! scheduled or cancelled, the record's metadata and the clock. It never touches topics, commits,
//! threads or sockets; the runtime owns those, which is what lets it offer exactly-once.

use std::any::Any;
use std::marker::PhantomData;

use orderflow_state_stores::{TransactionalKeyValueStore, TransactionalWindowStore};

use crate::error::ProcessError;
use crate::record::{Headers, Record, RecordMetadata};
use crate::task::TaskCore;
use crate::timers::{self, TimerKind};

/// Types that can travel between processors.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// A timer that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredTimer {
    pub kind: TimerKind,
    pub key: Vec<u8>,
    /// When it was due: wall-clock or stream time, by `kind`.
    pub due_ms: i64,
    pub payload: Vec<u8>,
}

/// A stateful or stateless step of a topology.
pub trait Processor: Send + 'static {
    type InKey: Data;
    type InValue: Data;
    type OutKey: Data;
    type OutValue: Data;

    /// Handles one record. An `Err` rolls back everything this call did (state, timers,
    /// forwards) and sends the input record to the dead-letter topic; processing continues.
    fn process(
        &mut self,
        context: &mut ProcessorContext<'_, Self::OutKey, Self::OutValue>,
        record: Record<Self::InKey, Self::InValue>,
    ) -> Result<(), ProcessError>;

    /// Handles a timer this processor scheduled. Errors are logged and counted.
    fn on_timer(
        &mut self,
        context: &mut ProcessorContext<'_, Self::OutKey, Self::OutValue>,
        timer: FiredTimer,
    ) -> Result<(), ProcessError> {
        let _ = (context, timer);
        Ok(())
    }
}

/// A record on its way between nodes, its types erased.
pub(crate) struct ErasedRecord {
    pub key: Box<dyn Any + Send>,
    pub value: Box<dyn Any + Send>,
    pub timestamp: i64,
    pub headers: Headers,
}

/// What a processor's context offers. `K` and `V` are the types it forwards.
pub struct ProcessorContext<'a, K, V> {
    pub(crate) core: &'a mut TaskCore,
    pub(crate) node: usize,
    pub(crate) _forwards: PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for ProcessorContext<'_, K, V> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProcessorContext")
            .field("node", &self.core.topology.node_name(self.node))
            .field("partition", &self.core.partition)
            .finish()
    }
}

impl<K: Data, V: Data> ProcessorContext<'_, K, V> {
    /// Sends a record to every child of this processor.
    pub fn forward(&mut self, record: Record<K, V>) {
        let children = self.core.topology.children(self.node);
        let Some((last, others)) = children.split_last() else {
            return;
        };
        for child in others {
            self.core.queue.push_back((
                *child,
                ErasedRecord {
                    key: Box::new(record.key.clone()),
                    value: Box::new(record.value.clone()),
                    timestamp: record.timestamp,
                    headers: record.headers.clone(),
                },
            ));
        }
        self.core.queue.push_back((
            *last,
            ErasedRecord {
                key: Box::new(record.key),
                value: Box::new(record.value),
                timestamp: record.timestamp,
                headers: record.headers,
            },
        ));
    }

    /// Sends a record to one named child.
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> Result<(), ProcessError> {
        let topology = self.core.topology.clone();
        let Some(child_index) = topology
            .children(self.node)
            .iter()
            .copied()
            .find(|index| topology.node_name(*index) == child)
        else {
            return Err(ProcessError::UnknownChild {
                processor: topology.node_name(self.node).to_string(),
                child: child.to_string(),
            });
        };
        self.core.enqueue(
            child_index,
            ErasedRecord {
                key: Box::new(record.key),
                value: Box::new(record.value),
                timestamp: record.timestamp,
                headers: record.headers,
            },
        );
        Ok(())
    }
}

impl<K, V> ProcessorContext<'_, K, V> {
    /// A typed key-value store attached to this processor.
    pub fn key_value_store<SK: 'static, SV: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TransactionalKeyValueStore<'_, SK, SV>, ProcessError> {
        self.core.key_value_store::<SK, SV>(self.node, name)
    }

    /// A read-only view of a global table (the whole table, whatever this task's partition).
    pub fn global_table<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<crate::global::GlobalTableView<'_, SK, SV>, ProcessError> {
        self.core.global_table::<SK, SV>(name)
    }

    /// A typed window store attached to this processor.
    pub fn window_store<SK: 'static, SV: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TransactionalWindowStore<'_, SK, SV>, ProcessError> {
        self.core.window_store::<SK, SV>(self.node, name)
    }

    /// Schedules (or moves) this processor's timer `key` of the given kind.
    pub fn schedule(
        &mut self,
        kind: TimerKind,
        key: &[u8],
        due_ms: i64,
        payload: Vec<u8>,
    ) -> Result<(), ProcessError> {
        let node_name = self.core.topology.node_name(self.node).to_string();
        timers::schedule(self.core, &node_name, kind, key, due_ms, payload)
    }

    /// Cancels this processor's timer `key`; cancelling a timer that does not exist is fine.
    pub fn cancel_timer(&mut self, kind: TimerKind, key: &[u8]) -> Result<(), ProcessError> {
        let node_name = self.core.topology.node_name(self.node).to_string();
        timers::cancel(self.core, &node_name, kind, key)
    }

    /// Cancels this processor's timer `key`, which the caller knows is due at `due_ms` (it
    /// scheduled it so, and kept the time): no read, where [`Self::cancel_timer`] reads the
    /// timer's index to find it. A wrong `due_ms` still cancels the timer; it only leaves a
    /// stale entry behind, deleted when it comes due.
    pub fn cancel_timer_due(&mut self, kind: TimerKind, key: &[u8], due_ms: i64) {
        let node_name = self.core.topology.node_name(self.node).to_string();
        timers::cancel_due(self.core, &node_name, kind, key, due_ms);
    }

    /// Schedules a *fixed* timer: named by `key` and `due_ms` together, it cannot be moved, and
    /// only [`Self::cancel_fixed_timer`] with the same time cancels it. It costs one write where
    /// [`Self::schedule`] costs two (no index), for timers whose time the processor keeps
    /// anyway, such as an expiry stored in its state. Scheduling the same key at another time
    /// adds a second timer; [`Self::cancel_timer`] does not see fixed timers.
    pub fn schedule_fixed(&mut self, kind: TimerKind, key: &[u8], due_ms: i64, payload: Vec<u8>) {
        let node_name = self.core.topology.node_name(self.node).to_string();
        timers::write_fixed(self.core, &node_name, kind, key, due_ms, Some(payload));
    }

    /// Cancels the fixed timer `key` due at `due_ms` (one delete, no read); nothing happens if
    /// there is none at that time.
    pub fn cancel_fixed_timer(&mut self, kind: TimerKind, key: &[u8], due_ms: i64) {
        let node_name = self.core.topology.node_name(self.node).to_string();
        timers::write_fixed(self.core, &node_name, kind, key, due_ms, None);
    }

    /// Where the current record came from; `None` inside a timer callback.
    pub fn metadata(&self) -> Option<&RecordMetadata> {
        self.core.metadata.as_ref()
    }

    /// Wall-clock time from the runtime's clock (a manual clock in tests).
    pub fn now_ms(&self) -> i64 {
        self.core.clock.now_ms()
    }

    /// The largest record timestamp this task has seen.
    pub fn stream_time_ms(&self) -> i64 {
        self.core.stream_time
    }

    /// The partition this task processes.
    pub fn partition(&self) -> u32 {
        self.core.partition
    }

    /// The application id (consumer group) running this processor.
    pub fn application_id(&self) -> &str {
        &self.core.application_id
    }
}
