//! JSON Schema (2020-12) of every public topic's record value: the envelope around the topic's
//! payload enum. Committed under `schemas/json/` for consumers outside Rust; a test keeps the
//! files equal to what the types generate (run with `ORDERFLOW_UPDATE_SCHEMAS=1` to rewrite them).

use crate::envelope::{Envelope, Message};
use crate::messages::{
    AnalyticsAggregate, CatalogCommand, CatalogEvent, InventoryCommand, InventoryEvent,
    NotificationEvent, OrderCommand, OrderEvent, PaymentCommand, PaymentEvent, UserEvent,
};

/// `(file name, schema)` for every public topic: `<topic>.json` holding the schema of
/// `Envelope<payload enum>`.
pub fn all_schemas() -> Vec<(String, serde_json::Value)> {
    vec![
        topic_schema::<OrderCommand>(),
        topic_schema::<CatalogCommand>(),
        topic_schema::<InventoryCommand>(),
        topic_schema::<PaymentCommand>(),
        topic_schema::<OrderEvent>(),
        topic_schema::<InventoryEvent>(),
        topic_schema::<PaymentEvent>(),
        topic_schema::<NotificationEvent>(),
        topic_schema::<UserEvent>(),
        topic_schema::<CatalogEvent>(),
        topic_schema::<AnalyticsAggregate>(),
    ]
}

/// The schema file of the topic carrying `T`.
pub fn topic_schema<T: Message>() -> (String, serde_json::Value) {
    let schema = schemars::schema_for!(Envelope<T>);
    (format!("{}.json", T::TOPIC), schema.to_value())
}

/// How a schema file is laid out on disk: pretty JSON with a trailing newline.
pub fn render_schema_file(schema: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::catalog::topic_catalog;

    #[test]
    fn one_schema_per_catalog_topic() {
        let files: BTreeSet<String> = all_schemas().into_iter().map(|(name, _)| name).collect();
        let topics: BTreeSet<String> = topic_catalog()
            .iter()
            .map(|entry| format!("{}.json", entry.name()))
            .collect();
        assert_eq!(files, topics);
    }

    #[test]
    fn envelope_schema_lists_header_fields_and_every_type() {
        let (_, schema) = topic_schema::<OrderCommand>();
        assert_eq!(schema["title"], "OrderCommandEnvelope");
        let required = schema["required"].as_array().unwrap();
        for field in [
            "event_id",
            "schema_version",
            "occurred_at",
            "correlation_id",
        ] {
            assert!(required.iter().any(|r| r == field), "{field} required");
        }
        let text = schema.to_string();
        for message_type in OrderCommand::TYPES {
            assert!(
                text.contains(&format!("\"const\":\"{message_type}\"")),
                "{message_type}"
            );
        }
        assert!(schema["$defs"]["PlaceOrder"].is_object());
    }

    /// The committed files in `schemas/json` equal what the types generate, and no stale file is
    /// left behind. With `ORDERFLOW_UPDATE_SCHEMAS=1` the files are rewritten instead.
    #[test]
    fn committed_json_schemas_match_types() {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
        let update = std::env::var("ORDERFLOW_UPDATE_SCHEMAS").as_deref() == Ok("1");
        let generated = all_schemas();
        let expected_names: BTreeSet<String> =
            generated.iter().map(|(name, _)| name.clone()).collect();
        let mut problems = Vec::new();

        for entry in std::fs::read_dir(&directory).expect("schemas/json exists") {
            let path = entry.expect("readable directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.extension().is_some_and(|ext| ext == "json") && !expected_names.contains(&name)
            {
                if update {
                    std::fs::remove_file(&path).expect("stale schema file removable");
                } else {
                    problems.push(format!("{name}: stale file, no topic generates it"));
                }
            }
        }

        for (name, schema) in generated {
            let path = directory.join(&name);
            let rendered = render_schema_file(&schema);
            if update {
                std::fs::write(&path, rendered).expect("schema file writable");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == rendered => {}
                Ok(_) => problems.push(format!("{name}: differs from the generated schema")),
                Err(error) => problems.push(format!("{name}: cannot read ({error})")),
            }
        }

        assert!(
            problems.is_empty(),
            "schemas/json is out of date; regenerate with \
             `ORDERFLOW_UPDATE_SCHEMAS=1 cargo test -p orderflow-schemas committed_json_schemas` \
             and commit the result:\n{}",
            problems.join("\n")
        );
    }
}
