//! RFC 9457 problem details: every error this API returns, documented and uniform.
//!
//! Handlers return [`ApiError`], whose variants are the documented error responses. Errors
//! raised before a handler runs (an unknown route, a body that is not JSON, a missing header)
//! come out of poem as plain text; [`ProblemResponses`] rewrites every such response into
//! `application/problem+json` with the same status, so a client parses one error shape.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::allowed_methods::AllowedMethods;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, PartialEq, Object, serde::Deserialize)]
#[oai(example)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a person.
    pub detail: String,
    /// For invalid input: the offending field, as a JSON path such as `lines[0].quantity`.
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub field: Option<String>,
    /// For 429: seconds until a retry can succeed (also in the `Retry-After` header).
    #[oai(skip_serializing_if_is_none)]
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
}

impl poem_openapi::types::Example for Problem {
    fn example() -> Self {
        // A rule the schema cannot express (422, naming the field); input that breaks the
        // schema itself (types, bounds, required fields) is a 400.
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "lines[1].sku: SKU MUG already appears in lines[0]; merge the quantities into one line",
        )
        .with_field(Some("lines[1].sku".to_string()))
    }
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        let slug = title.to_lowercase().replace(' ', "-");
        Self {
            problem_type: format!("https://orderflow.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_field(mut self, field: Option<String>) -> Self {
        self.field = field;
        self
    }
}

/// Every error response of the API.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: not JSON, a missing or badly typed parameter or field.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No valid access token: missing, expired, revoked, forged or for another audience.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>, #[oai(header = "WWW-Authenticate")] String),
    /// The token is valid but its role may not do this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource, or not one the caller may see.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (a duplicate email, a concurrent request
    /// with the same idempotency key, an order that can no longer be cancelled).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than the server accepts.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// Well-formed but invalid: a field breaks a rule, or an idempotency key is reused with
    /// another body.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many requests; retry after the given number of seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// The server failed; the request may be retried.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// A dependency (database, Redis, the log) is unavailable; retry later.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(Problem::new(StatusCode::BAD_REQUEST, detail)))
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"{}\"",
            detail.replace('"', "'")
        );
        Self::Unauthorized(
            Json(Problem::new(StatusCode::UNAUTHORIZED, detail)),
            challenge,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(Json(Problem::new(StatusCode::FORBIDDEN, detail)))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(Json(Problem::new(StatusCode::NOT_FOUND, detail)))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(Json(Problem::new(StatusCode::CONFLICT, detail)))
    }

    pub fn unprocessable(field: Option<String>, detail: impl Into<String>) -> Self {
        Self::Unprocessable(Json(
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail).with_field(field),
        ))
    }

    pub fn invalid(error: orderflow_schemas::validation::ValidationError) -> Self {
        let detail = error.to_string();
        Self::unprocessable(Some(error.field), detail)
    }

    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit exceeded; retry in {retry_after_seconds} s"),
        );
        problem.retry_after_seconds = Some(retry_after_seconds);
        Self::TooManyRequests(Json(problem), retry_after_seconds)
    }

    /// A server-side failure; the detail is logged, the client gets a generic message.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{context} failed; the request can be retried"),
        )))
    }

    pub fn unavailable(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "{context}");
        Self::Unavailable(Json(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{context} is unavailable; retry later"),
        )))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Renders a problem as a complete HTTP response.
pub fn problem_response(problem: &Problem) -> Response {
    use poem_openapi::types::ToJSON;
    Response::builder()
        .status(StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type(PROBLEM_CONTENT_TYPE)
        .body(problem.to_json_string())
}

/// Middleware that turns every error response into problem+json (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct ProblemResponses {
    /// For the `Allow` header of a 405.
    pub allowed_methods: Arc<AllowedMethods>,
}

impl<E: Endpoint> Middleware<E> for ProblemResponses {
    type Output = ProblemResponsesEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ProblemResponsesEndpoint {
            inner,
            allowed_methods: self.allowed_methods.clone(),
        }
    }
}

#[derive(Debug)]
pub struct ProblemResponsesEndpoint<E> {
    inner: E,
    allowed_methods: Arc<AllowedMethods>,
}

impl<E: Endpoint> Endpoint for ProblemResponsesEndpoint<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        // A reference-counted clone, only read for a 405.
        let uri = request.uri().clone();
        let response = match self.inner.call(request).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        let mut response = into_problem(response).await;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !response.headers().contains_key(poem::http::header::ALLOW)
            && let Some(allow) = self.allowed_methods.for_path(uri.path())
            && let Ok(value) = poem::http::HeaderValue::from_str(&allow)
        {
            response
                .headers_mut()
                .insert(poem::http::header::ALLOW, value);
        }
        Ok(response)
    }
}

async fn into_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .content_type()
        .is_some_and(|content_type| content_type.starts_with(PROBLEM_CONTENT_TYPE));
    if is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = body.into_string().await.unwrap_or_default();
    let detail = match text.trim() {
        "" => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
        text => text.chars().take(500).collect(),
    };
    // poem reports a body that does not match the declared content type as 400 or 415; both
    // pass through with their status.
    let mut rewritten = problem_response(&Problem::new(status, detail));
    if status == StatusCode::UNAUTHORIZED
        && !parts
            .headers
            .contains_key(poem::http::header::WWW_AUTHENTICATE)
    {
        // RFC 9110: a 401 names the scheme that would work.
        rewritten.headers_mut().insert(
            poem::http::header::WWW_AUTHENTICATE,
            poem::http::HeaderValue::from_static("Bearer realm=\"orderflow\""),
        );
    }
    for (name, value) in parts.headers.iter() {
        if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}
