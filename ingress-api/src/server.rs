//! The HTTP surface: the OpenAPI service, the documents, and the middleware every request
//! passes (metrics, problem details, body limit, per-IP rate limit).

use std::sync::Arc;
use std::time::Instant;

use poem::endpoint::make_sync;
use poem::http::StatusCode;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;

use crate::allowed_methods::AllowedMethods;
use crate::api::analytics::AnalyticsApi;
use crate::api::auth::AuthApi;
use crate::api::catalog::CatalogApi;
use crate::api::inventory::InventoryApi;
use crate::api::me::MeApi;
use crate::api::notifications::NotificationsApi;
use crate::api::operations::OperationsApi;
use crate::api::orders::OrdersApi;
use crate::metrics::route_template;
use crate::problem::{ApiError, Problem, ProblemResponses, problem_response};
use crate::rate_limit::{Quota, retry_after_seconds};
use crate::state::AppState;

type Apis = (
    AuthApi,
    MeApi,
    NotificationsApi,
    CatalogApi,
    InventoryApi,
    OrdersApi,
    AnalyticsApi,
    OperationsApi,
);

/// The OpenAPI service: every operation of the API.
pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            AuthApi,
            MeApi,
            NotificationsApi,
            CatalogApi,
            InventoryApi,
            OrdersApi,
            AnalyticsApi,
            OperationsApi,
        ),
        "orderflow",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Event-driven order management. Commands are accepted (202) and processed by stream \
         processors; reads come from materialized views. Every error is RFC 9457 \
         `application/problem+json`. Authenticate with `POST /api/v1/auth/login` and send the \
         access token as `Authorization: Bearer <token>`.",
    )
}

/// The OpenAPI document as JSON (what `/api-docs` serves and `openapi.json` holds): what
/// poem-openapi generates, plus the links between operations (`openapi_links`) and the code
/// formats the handlers enforce (`openapi_formats`).
pub fn openapi_document() -> String {
    let mut document: serde_json::Value =
        serde_json::from_str(&api_service().spec()).expect("poem-openapi writes valid JSON");
    crate::openapi_links::add_links(&mut document);
    crate::openapi_formats::add_formats(&mut document);
    serde_json::to_string_pretty(&document).expect("a JSON value serializes")
}

/// Every route, with the middleware.
pub fn routes(state: Arc<AppState>) -> impl Endpoint<Output = Response> {
    let service = api_service();
    let spec_text = openapi_document();
    let document: serde_json::Value =
        serde_json::from_str(&spec_text).expect("the document is valid JSON");
    let allowed_methods = AllowedMethods::from_openapi(
        &document,
        &[("/api-docs", "GET"), ("/swagger-ui.html", "GET")],
    );
    // The document with its links; poem-openapi's own spec endpoint would serve it without.
    let spec = make_sync(move |_| {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(spec_text.clone())
    });
    let swagger = service.swagger_ui_html();
    let max_body = state.config.max_body_bytes;
    let limiter_state = state.clone();
    let metrics_state = state.clone();
    Route::new()
        .at("/api-docs", spec)
        .at(
            "/swagger-ui.html",
            make_sync(move |_| Html(swagger.clone())),
        )
        .nest("/", service)
        .around(move |endpoint, request| {
            let state = limiter_state.clone();
            async move { guard(&state, max_body, endpoint, request).await }
        })
        .with(ProblemResponses {
            allowed_methods: Arc::new(allowed_methods),
        })
        .around(move |endpoint, request| {
            let state = metrics_state.clone();
            async move {
                let started = Instant::now();
                let method = crate::metrics::method_label(request.method());
                let route = route_template(request.uri().path());
                let response = endpoint.call(request).await?;
                state.metrics.record_http(
                    method,
                    &route,
                    response.status().as_u16(),
                    started.elapsed(),
                );
                Ok(response)
            }
        })
        .data(state)
}

/// The per-IP rate limit and the body size limit, before any handler runs.
async fn guard<E: Endpoint>(
    state: &AppState,
    max_body: usize,
    endpoint: Arc<E>,
    mut request: Request,
) -> poem::Result<Response> {
    let limits = &state.config.rate_limits;
    // Probes and scrapes are never limited: a load balancer that got 429 from /health/ready
    // would take a healthy instance out of service.
    let operational = matches!(
        request.uri().path(),
        "/health/live" | "/health/ready" | "/metrics"
    );
    if limits.per_ip_per_second > 0 && !operational {
        let ip = match request.remote_addr().as_socket_addr() {
            Some(address) => address.ip().to_string(),
            None => "unknown".to_string(),
        };
        let quota = Quota {
            per_second: limits.per_ip_per_second,
            burst: limits.per_ip_burst,
        };
        match state
            .shared
            .rate_limit(&format!("ip:{ip}"), quota, state.now_ms())
            .await
        {
            Ok(None) => {}
            Ok(Some(retry_after_micros)) => {
                state.metrics.count_rate_limited();
                return Ok(
                    ApiError::too_many_requests(retry_after_seconds(retry_after_micros))
                        .into_response(),
                );
            }
            Err(error) => {
                return Ok(ApiError::unavailable("the rate limiter", error).into_response());
            }
        }
    }
    let too_large = || {
        problem_response(&Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max_body} bytes"),
        ))
    };
    let declared = request
        .header(poem::http::header::CONTENT_LENGTH)
        .and_then(|length| length.parse::<usize>().ok());
    if declared.is_some_and(|length| length > max_body) {
        return Ok(too_large());
    }
    if declared.is_none() {
        // No declared length (a chunked body): read it up to the limit before any handler
        // sees it.
        match request.take_body().into_bytes_limit(max_body).await {
            Ok(bytes) => request.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
            Err(error) => return Err(error.into()),
        }
    }
    endpoint
        .call(request)
        .await
        .map(IntoResponse::into_response)
}
