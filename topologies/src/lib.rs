//! Named topologies. The order saga's topologies arrive with the saga; until then this crate
//! holds the counting topology that the demo, the benchmarks and the crash test run.

pub mod counter;

use orderflow_runtime::{Topology, TopologyError};

/// A topology `orderflow topology describe` knows by name.
#[derive(Debug, Clone, Copy)]
pub struct NamedTopology {
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn() -> Result<Topology, TopologyError>,
}

/// Every named topology.
pub fn named_topologies() -> Vec<NamedTopology> {
    vec![NamedTopology {
        name: "counter",
        summary: "counts records per key, exactly once, and emits each running count",
        build: || counter::topology(counter::DEFAULT_PARTITIONS),
    }]
}
