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

#[test]
fn links_carry_ids_from_one_operation_to_the_next() {
    let document: Value = serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let mut operation_ids = std::collections::HashSet::new();
    let mut links = Vec::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            operation_ids.insert(operation["operationId"].as_str().unwrap().to_string());
            for response in operation["responses"].as_object().unwrap().values() {
                if let Some(found) = response["links"].as_object() {
                    links.extend(found.values().cloned());
                }
            }
        }
    }
    for link in &links {
        let target = link["operationId"].as_str().unwrap();
        assert!(
            operation_ids.contains(target),
            "a link to {target}, which does not exist"
        );
        for expression in link["parameters"].as_object().unwrap().values() {
            let expression = expression.as_str().unwrap();
            assert!(
                expression.starts_with("$response.body#/")
                    || expression.starts_with("$request.body#/"),
                "{expression}"
            );
        }
    }
    let placed = &document["paths"]["/api/v1/orders"]["post"]["responses"]["202"]["links"];
    for target in ["getOrder", "cancelOrder", "shipOrder", "deliverOrder"] {
        assert_eq!(
            placed[target]["parameters"]["order_id"], "$response.body#/order_id",
            "{placed}"
        );
    }
    let created = &document["paths"]["/api/v1/products"]["post"]["responses"]["202"]["links"];
    assert_eq!(
        created["getStock"]["parameters"]["sku"],
        "$request.body#/sku"
    );
}

#[test]
fn codes_declare_the_alphabet_the_handlers_enforce() {
    let document: Value = serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let sku = orderflow_schemas::Sku::PATTERN;
    assert_eq!(schemas["NewProduct"]["properties"]["sku"]["pattern"], sku);
    assert_eq!(
        schemas["OrderLineInput"]["properties"]["sku"]["pattern"],
        sku
    );
    assert_eq!(
        schemas["CouponInput"]["properties"]["code"]["pattern"],
        orderflow_schemas::CouponCode::PATTERN
    );
    let parameters = document["paths"]["/api/v1/products/{sku}"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let path_sku = parameters
        .iter()
        .find(|parameter| parameter["name"] == "sku")
        .unwrap();
    assert_eq!(path_sku["schema"]["pattern"], sku);
    // Patching added nothing else: every operation's parameters, where present, are a list.
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            if let Some(parameters) = operation.get("parameters") {
                assert!(parameters.is_array(), "{operation}");
            }
        }
    }
    // The pattern and the parser agree.
    assert!(orderflow_schemas::Sku::parse("MUG-BLUE_2").is_ok());
    assert!(orderflow_schemas::Sku::parse("mug.blue").is_err());
}

#[test]
fn every_request_body_and_the_problem_schema_have_an_example() {
    let document: Value = serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(content) = operation["requestBody"]["content"].as_object() else {
                continue;
            };
            for media in content.values() {
                let name = media["schema"]["$ref"]
                    .as_str()
                    .and_then(|reference| reference.rsplit('/').next())
                    .unwrap_or_default();
                if media.get("example").is_none() && schemas[name].get("example").is_none() {
                    missing.push(format!("{method} {path} ({name})"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "request bodies without an example: {missing:?}"
    );
    // Every error answers with the problem schema: its example shows in every error response.
    assert!(schemas["Problem"]["example"].is_object());
}

#[test]
fn every_json_response_body_has_an_example() {
    let document: Value = serde_json::from_str(&orderflow_ingress_api::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let mut missing = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Some(media) = response["content"]["application/json"].as_object() else {
                    continue;
                };
                let Some(name) = media["schema"]["$ref"]
                    .as_str()
                    .and_then(|reference| reference.rsplit('/').next())
                else {
                    continue;
                };
                if schemas[name].get("example").is_none() {
                    missing.push(format!("{method} {path} {status} ({name})"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "responses without an example: {missing:?}"
    );
}
