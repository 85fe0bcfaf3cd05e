//! The API's own metrics, rendered beside the runtime's at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderflow_runtime::metrics::LatencyHistogram;

/// HTTP latencies by route and status, order outcomes and order latency.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    http: Mutex<BTreeMap<(String, String, u16), Arc<LatencyHistogram>>>,
    order_events: Mutex<BTreeMap<&'static str, Arc<AtomicU64>>>,
    order_latency: Mutex<BTreeMap<&'static str, Arc<LatencyHistogram>>>,
    rate_limited: AtomicU64,
}

/// The `method` label of a request: the standard methods by name, anything else `OTHER`.
/// hyper accepts any token as a method, and a label per invented method would grow
/// `/metrics` without bound.
pub fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl ApiMetrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn record_http(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let histogram = self
            .http
            .lock()
            .expect("metrics lock poisoned")
            .entry((method.to_string(), route.to_string(), status))
            .or_default()
            .clone();
        histogram.record(elapsed);
    }

    pub fn count_order_event(&self, kind: &'static str) {
        self.order_events
            .lock()
            .expect("metrics lock poisoned")
            .entry(kind)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_order_latency(&self, outcome: &'static str, elapsed: Duration) {
        let histogram = self
            .order_latency
            .lock()
            .expect("metrics lock poisoned")
            .entry(outcome)
            .or_default()
            .clone();
        histogram.record(elapsed);
    }

    pub fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// How many orders reached `outcome` so far (for tests and loadgen).
    pub fn order_latency_count(&self, outcome: &str) -> u64 {
        self.order_latency
            .lock()
            .expect("metrics lock poisoned")
            .get(outcome)
            .map_or(0, |histogram| histogram.count())
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP orderflow_http_request_duration_seconds HTTP request latency by route and status."
        );
        let _ = writeln!(
            out,
            "# TYPE orderflow_http_request_duration_seconds histogram"
        );
        for ((method, route, status), histogram) in
            self.http.lock().expect("metrics lock poisoned").iter()
        {
            histogram.render_into(
                out,
                "orderflow_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\",status=\"{status}\""),
            );
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_order_events_total Order events seen on order-events, by type (saga outcomes)."
        );
        let _ = writeln!(out, "# TYPE orderflow_order_events_total counter");
        for (kind, count) in self
            .order_events
            .lock()
            .expect("metrics lock poisoned")
            .iter()
        {
            let _ = writeln!(
                out,
                "orderflow_order_events_total{{type=\"{kind}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_order_latency_seconds From POST /orders to the order's outcome: the saga's decision (confirmed, rejected, cancelled, payment_failed) or the end of its lifecycle (delivered)."
        );
        let _ = writeln!(out, "# TYPE orderflow_order_latency_seconds histogram");
        for (outcome, histogram) in self
            .order_latency
            .lock()
            .expect("metrics lock poisoned")
            .iter()
        {
            histogram.render_into(
                out,
                "orderflow_order_latency_seconds",
                &format!("outcome=\"{outcome}\""),
            );
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_http_rate_limited_total Requests refused with 429.\n# TYPE orderflow_http_rate_limited_total counter\norderflow_http_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
    }
}

/// The API's path templates, from the committed OpenAPI document (which a test keeps equal to
/// the code), as segments: `None` for a parameter.
static API_TEMPLATES: std::sync::LazyLock<Vec<Vec<Option<String>>>> =
    std::sync::LazyLock::new(|| {
        let document: serde_json::Value =
            serde_json::from_str(include_str!("../openapi.json")).unwrap_or_default();
        document["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.keys())
            .filter(|path| path.starts_with("/api/v1/"))
            .map(|path| {
                path.split('/')
                    .filter(|segment| !segment.is_empty())
                    .map(|segment| {
                        (!(segment.starts_with('{') && segment.ends_with('}')))
                            .then(|| segment.to_string())
                    })
                    .collect()
            })
            .collect()
    });

/// The route template of a path, so label values stay few: ids become `{id}`, and a path that
/// is no route of the API is `other` (a client probing random paths must not grow the metrics
/// without bound).
pub fn route_template(path: &str) -> String {
    if !path.starts_with("/api/v1/") {
        return match path {
            "/health/live" | "/health/ready" | "/metrics" | "/api-docs" | "/swagger-ui.html" => {
                path.to_string()
            }
            _ if path.starts_with("/swagger-ui") => "/swagger-ui".to_string(),
            _ => "other".to_string(),
        };
    }
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    let matches = |template: &&Vec<Option<String>>| {
        template.len() == segments.len()
            && template.iter().zip(&segments).all(|(expected, segment)| {
                expected
                    .as_deref()
                    .is_none_or(|literal| literal == *segment)
            })
    };
    // A literal beats a parameter where both match (`/inventory/low-stock`, not `/{sku}`).
    let best = API_TEMPLATES
        .iter()
        .filter(matches)
        .max_by_key(|template| template.iter().filter(|segment| segment.is_some()).count());
    match best {
        Some(template) => template.iter().fold(String::new(), |mut out, segment| {
            out.push('/');
            out.push_str(segment.as_deref().unwrap_or("{id}"));
            out
        }),
        None => "other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_become_placeholders() {
        assert_eq!(
            route_template("/api/v1/orders/0190f1a2-0000-7000-8000-000000000000/cancel"),
            "/api/v1/orders/{id}/cancel"
        );
        assert_eq!(
            route_template("/api/v1/inventory/low-stock"),
            "/api/v1/inventory/low-stock"
        );
        assert_eq!(
            route_template("/api/v1/products/SKU-1/price"),
            "/api/v1/products/{id}/price"
        );
        assert_eq!(route_template("/random/path"), "other");
    }

    #[test]
    fn invented_methods_share_one_label() {
        use poem::http::Method;
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "OTHER"
        );
        // Paths under the API that are no route of it share one label.
        assert_eq!(route_template("/api/v1/orders/x/y/z"), "other");
        assert_eq!(route_template("/api/v1/nonsense-1"), "other");
        assert_eq!(route_template("/api/v1/nonsense-2"), "other");
        assert_eq!(route_template("/api/v1/orders"), "/api/v1/orders");
        assert_eq!(
            route_template("/api/v1/me/notifications"),
            "/api/v1/me/notifications"
        );
    }

    #[test]
    fn rendering_includes_every_family() {
        let metrics = ApiMetrics::new();
        metrics.record_http("GET", "/api/v1/orders", 200, Duration::from_millis(3));
        metrics.count_order_event("confirmed");
        metrics.record_order_latency("confirmed", Duration::from_millis(12));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(out.contains(
            "orderflow_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/orders\",status=\"200\"} 1"
        ));
        assert!(out.contains("orderflow_order_events_total{type=\"confirmed\"} 1"));
        assert!(out.contains("orderflow_order_latency_seconds_count{outcome=\"confirmed\"} 1"));
    }
}

/// Merges Prometheus texts that may repeat a metric family (one per topology) into one
/// exposition where each family appears once, its samples together.
pub fn merge_expositions(texts: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    let mut assignments: Vec<(String, bool, String)> = Vec::new();
    for text in texts {
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
            {
                let name = rest.split(' ').next().unwrap_or_default().to_string();
                families.entry(name.clone()).or_default();
                assignments.push((name, true, line.to_string()));
            } else {
                let name = line
                    .split(['{', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let family = family_of_sample(&families, &name);
                assignments.push((family, false, line.to_string()));
            }
        }
    }
    for (family, is_header, line) in assignments {
        let entry = families.entry(family.clone()).or_default();
        if entry.0.is_empty() && entry.1.is_empty() {
            order.push(family);
        }
        if is_header {
            if !entry.0.contains(&line) {
                entry.0.push(line);
            }
        } else {
            entry.1.push(line);
        }
    }
    let mut out = String::new();
    for family in order {
        if let Some((headers, samples)) = families.get(&family) {
            for line in headers.iter().chain(samples) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    #[test]
    fn repeated_families_are_merged_with_one_header() {
        let first = "# HELP a_total A.\n# TYPE a_total counter\na_total{app=\"x\"} 1\n".to_string();
        let second = "# HELP a_total A.\n# TYPE a_total counter\na_total{app=\"y\"} 2\n# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n".to_string();
        let merged = merge_expositions(&[first, second]);
        assert_eq!(
            merged,
            "# HELP a_total A.\n# TYPE a_total counter\na_total{app=\"x\"} 1\na_total{app=\"y\"} 2\n# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n"
        );
    }
}

/// The family a sample line belongs to: histogram series end in `_bucket`, `_sum`, `_count`.
fn family_of_sample(families: &BTreeMap<String, (Vec<String>, Vec<String>)>, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && families.contains_key(base)
        {
            return base.to_string();
        }
    }
    name.to_string()
}
