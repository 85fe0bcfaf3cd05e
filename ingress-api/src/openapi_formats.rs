//! Formats the server enforces in its own validation, declared in the OpenAPI document: the
//! alphabet of SKUs, coupon codes and idempotency keys. A poem-openapi `pattern` validator would enforce them as
//! well, but as a bare 400; the handlers answer 422 naming the field, so the pattern is added
//! to the generated document only, as documentation and for contract tests (which then generate
//! codes the server can accept, and expect a 4xx for the others).

use orderflow_schemas::{CouponCode, Sku};
use serde_json::{Value, json};

/// (schema, property, pattern) of request bodies.
const PROPERTIES: &[(&str, &str, &str)] = &[
    ("NewProduct", "sku", Sku::PATTERN),
    ("OrderLineInput", "sku", Sku::PATTERN),
    ("CouponInput", "code", CouponCode::PATTERN),
    ("PlaceOrderRequest", "coupon_code", CouponCode::PATTERN),
];

/// Visible ASCII: what an `Idempotency-Key` may hold (the handler checks it byte by byte;
/// a validator would compile the regular expression on every request).
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]+$";

/// (location, name, pattern) of parameters.
const PARAMETERS: &[(&str, &str, &str)] = &[
    ("path", "sku", Sku::PATTERN),
    ("header", "Idempotency-Key", IDEMPOTENCY_KEY_PATTERN),
];

/// Adds the patterns; panics if a schema or property named here does not exist (the document
/// test generates the document, so a rename fails there).
pub fn add_formats(document: &mut Value) {
    for (schema, property, pattern) in PROPERTIES {
        let target = document["components"]["schemas"][*schema]["properties"]
            .get_mut(*property)
            .unwrap_or_else(|| panic!("no property {property} in schema {schema}"));
        target["pattern"] = json!(pattern);
    }
    let mut patched = 0;
    for item in document["paths"]
        .as_object_mut()
        .expect("a document has paths")
        .values_mut()
    {
        for operation in item.as_object_mut().expect("a path item").values_mut() {
            // `get_mut`, not `["parameters"]`: indexing would insert a null where there is none.
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                for (location, name, pattern) in PARAMETERS {
                    if parameter["in"] == *location && parameter["name"] == *name {
                        parameter["schema"]["pattern"] = json!(pattern);
                        patched += 1;
                    }
                }
            }
        }
    }
    assert!(patched > 0, "no parameter to declare a format for");
}
