//! The `Allow` header of a 405 (RFC 9110 §15.5.6): the methods a path does take. Read from the
//! OpenAPI document the routes are generated from, so it cannot disagree with them.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}` in the document: any one segment.
    Parameter,
}

#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<Segment>, BTreeSet<String>)>,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

impl AllowedMethods {
    /// The paths and methods of an OpenAPI document, plus `extra` routes served outside it
    /// (the document itself, Swagger UI).
    pub fn from_openapi(document: &serde_json::Value, extra: &[(&str, &str)]) -> Self {
        let mut allowed = Self::default();
        if let Some(paths) = document["paths"].as_object() {
            for (path, operations) in paths {
                let methods = operations
                    .as_object()
                    .into_iter()
                    .flat_map(|operations| operations.keys())
                    .filter(|method| {
                        matches!(
                            method.as_str(),
                            "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                        )
                    })
                    .map(|method| method.to_uppercase());
                allowed.add(path, methods);
            }
        }
        for (path, method) in extra {
            allowed.add(path, [method.to_string()]);
        }
        allowed
    }

    fn add(&mut self, path: &str, methods: impl IntoIterator<Item = String>) {
        let pattern: Vec<Segment> = segments(path)
            .map(
                |segment| match segment.starts_with('{') && segment.ends_with('}') {
                    true => Segment::Parameter,
                    false => Segment::Literal(segment.to_string()),
                },
            )
            .collect();
        let mut methods: BTreeSet<String> = methods.into_iter().collect();
        // HEAD is answered wherever GET is.
        if methods.contains("GET") {
            methods.insert("HEAD".to_string());
        }
        match self
            .routes
            .iter_mut()
            .find(|(existing, _)| *existing == pattern)
        {
            Some((_, existing)) => existing.extend(methods),
            None => self.routes.push((pattern, methods)),
        }
    }

    /// The `Allow` value for a request path, or `None` when no route has that path.
    pub fn for_path(&self, path: &str) -> Option<String> {
        let requested: Vec<&str> = segments(path).collect();
        let mut methods = BTreeSet::new();
        for (pattern, route_methods) in &self.routes {
            let matches = pattern.len() == requested.len()
                && pattern
                    .iter()
                    .zip(&requested)
                    .all(|(segment, requested)| match segment {
                        Segment::Parameter => true,
                        Segment::Literal(literal) => literal == requested,
                    });
            if matches {
                methods.extend(route_methods.iter().cloned());
            }
        }
        (!methods.is_empty()).then(|| methods.into_iter().collect::<Vec<_>>().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn allowed() -> AllowedMethods {
        let document = json!({"paths": {
            "/api/v1/orders": {"get": {}, "post": {}, "parameters": []},
            "/api/v1/orders/{order_id}": {"get": {}},
            "/api/v1/orders/{order_id}/cancel": {"post": {}},
            "/api/v1/products/{sku}": {"get": {}, "patch": {}},
        }});
        AllowedMethods::from_openapi(&document, &[("/api-docs", "GET")])
    }

    #[test]
    fn a_path_lists_the_methods_of_its_route() {
        let allowed = allowed();
        assert_eq!(
            allowed.for_path("/api/v1/orders").unwrap(),
            "GET, HEAD, POST"
        );
        assert_eq!(
            allowed.for_path("/api/v1/orders/").unwrap(),
            "GET, HEAD, POST"
        );
        assert_eq!(
            allowed.for_path("/api/v1/orders/abc/cancel").unwrap(),
            "POST"
        );
        assert_eq!(
            allowed.for_path("/api/v1/products/SKU-1").unwrap(),
            "GET, HEAD, PATCH"
        );
        assert_eq!(allowed.for_path("/api-docs").unwrap(), "GET, HEAD");
    }

    #[test]
    fn unknown_paths_have_no_allow_header() {
        let allowed = allowed();
        assert_eq!(allowed.for_path("/api/v1/nothing"), None);
        assert_eq!(allowed.for_path("/api/v1/orders/abc/cancel/more"), None);
        assert_eq!(allowed.for_path("/api/v1/orders/abc/refund"), None);
    }
}
