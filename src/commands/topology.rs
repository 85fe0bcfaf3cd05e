//! `orderflow topology describe`: the named topologies, as text or Graphviz dot.

use anyhow::bail;
use clap::Subcommand;
use orderflow_topologies::named_topologies;

#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Describes one topology, or all of them.
    Describe {
        name: Option<String>,
        /// Graphviz dot instead of text.
        #[arg(long)]
        dot: bool,
    },
}

pub fn run(command: TopologyCommand) -> anyhow::Result<()> {
    let TopologyCommand::Describe { name, dot } = command;
    let all = named_topologies();
    let selected: Vec<_> = match &name {
        Some(name) => all.iter().filter(|named| named.name == name).collect(),
        None => all.iter().collect(),
    };
    if selected.is_empty() {
        let known: Vec<_> = all.iter().map(|named| named.name).collect();
        bail!(
            "no topology named `{}`; known: {}",
            name.unwrap_or_default(),
            known.join(", ")
        );
    }
    for named in selected {
        let topology = (named.build)()?;
        if dot {
            print!("{}", topology.to_dot());
        } else {
            println!("# {}: {}", named.name, named.summary);
            print!("{}", topology.describe());
        }
    }
    Ok(())
}
