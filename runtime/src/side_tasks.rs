//! The tasks that run beside the stream tasks: global tables and effect executors.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::RuntimeConfig;
use crate::effects::EffectTask;
use crate::error::RuntimeError;
use crate::global::GlobalTableTask;
use crate::log::LogBackend;
use crate::topology::Topology;

pub(crate) struct SideTasks {
    global_tables: Vec<GlobalTableTask>,
    effects: Vec<EffectTask>,
}

impl SideTasks {
    pub fn open(
        topology: &Topology,
        log: &dyn LogBackend,
        config: &RuntimeConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RuntimeError> {
        let global_tables = topology
            .global_tables
            .iter()
            .map(|definition| {
                GlobalTableTask::open(
                    definition.clone(),
                    &config.application_id,
                    log,
                    config.poll_batch_records,
                    clock.clone(),
                )
            })
            .collect::<Result<_, _>>()?;
        let effects = topology
            .effects
            .iter()
            .map(|definition| {
                EffectTask::open(
                    definition.clone(),
                    &config.application_id,
                    log,
                    config.effect_batch_records,
                    clock.clone(),
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            global_tables,
            effects,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.global_tables.is_empty() && self.effects.is_empty()
    }

    pub fn poll_global_tables(&mut self, log: &dyn LogBackend) -> Result<usize, RuntimeError> {
        let mut applied = 0;
        for table in &mut self.global_tables {
            applied += table.poll(log)?;
        }
        Ok(applied)
    }

    pub fn poll_effects(&mut self, log: &dyn LogBackend) -> Result<usize, RuntimeError> {
        self.poll_effects_where(log, |_| true)
    }

    /// Polls the effect executors whose request topic `include` accepts.
    pub fn poll_effects_where(
        &mut self,
        log: &dyn LogBackend,
        include: impl Fn(&str) -> bool,
    ) -> Result<usize, RuntimeError> {
        let mut executed = 0;
        for effect in &mut self.effects {
            if include(effect.request_topic()) {
                executed += effect.poll(log)?;
            }
        }
        Ok(executed)
    }

    /// Brings every global table to the end of its topic, as it is when called.
    pub fn bootstrap(&mut self, log: &dyn LogBackend) -> Result<(), RuntimeError> {
        for table in &mut self.global_tables {
            while !table.is_caught_up(log)? {
                table.poll(log)?;
            }
        }
        Ok(())
    }
}
