//! The committed OpenAPI document (`ingress-api/openapi.json`) is what the code serves at
//! `/api-docs`. Regenerate after an API change with
//! `ORDERFLOW_UPDATE_OPENAPI=1 cargo test -p orderflow-ingress-api --test openapi_document`.

use std::path::Path;

use serde_json::Value;

#[test]
fn the_committed_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated: Value =
        serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("ORDERFLOW_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("ingress-api/openapi.json is committed");
    assert!(
        committed == pretty,
        "ingress-api/openapi.json is out of date; regenerate it with ORDERFLOW_UPDATE_OPENAPI=1 cargo test -p orderflow-ingress-api --test openapi_document"
    );
}

#[test]
fn every_operation_is_documented_with_security_errors_and_an_id() {
    let document: Value = serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let public = [
        "register",
        "login",
        "refresh",
        "listProducts",
        "getProduct",
        "live",
        "ready",
        "metrics",
    ];
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                operation["summary"].is_string() || operation["description"].is_string(),
                "{id} is undocumented"
            );
            assert!(
                !operation["tags"].as_array().unwrap().is_empty(),
                "{id} has no tag"
            );
            let responses = operation["responses"].as_object().unwrap();
            if path.starts_with("/api/v1") {
                for status in ["400", "401", "404", "422", "429", "500"] {
                    let response = &responses[status];
                    assert!(response.is_object(), "{id} does not document {status}");
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{id} {status} is not problem+json"
                    );
                }
            }
            let secured = operation["security"]
                .as_array()
                .is_some_and(|schemes| !schemes.is_empty());
            assert_eq!(secured, !public.contains(&id), "{id}: security");
        }
    }
    assert!(operations >= 25, "{operations} operations");
    assert!(document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer");
}
