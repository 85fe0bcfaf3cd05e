//! The ingress API: poem + poem-openapi, authenticating requests, writing commands to topics and
//! serving materialized views. It arrives with the ingress-API issue; the runtime's metrics
//! registry already renders the Prometheus text its `/metrics` route will serve.
