//! Errors: [`ApiError`], the one type every handler fails with, which
//! becomes a JSON response; and [`ServeError`], why the server could not start.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaskad_registry::RegistryError;
use serde::Serialize;
use serde_json::{Map, Value};

/// Why `kaskad serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    #[error("the operating system gave no random bytes for a key: {0}")]
    Random(String),
    #[error("starting the HTTP client for remote cascade modules: {0}")]
    Http(#[from] reqwest::Error),
}

/// A rejected or failed request: its status and a message for the client,
/// with the JSON path of the offending value when there is one, and any
/// further fields the client needs (every compile error of a cascade, the
/// module that failed).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub path: Option<String>,
    pub details: Map<String, Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(flatten)]
    details: &'a Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            path: None,
            details: Map::new(),
        }
    }

    /// Adds `key` to the body beside `error` and `path`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// 422: the request is well-formed JSON but a value at `path` is wrong.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            path: Some(path.into()),
            details: Map::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 whose details go to the server's log, not to the client: they
    /// name files and database errors that are none of the caller's business.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        eprintln!("kaskad serve: internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server's log",
        )
    }
}

impl From<RegistryError> for ApiError {
    /// The one place registry errors become statuses.
    fn from(error: RegistryError) -> ApiError {
        match error {
            RegistryError::UnknownModel { .. } => ApiError::not_found(error.to_string()),
            RegistryError::UnknownRole { .. } => ApiError::bad_request(error.to_string()),
            RegistryError::Sqlite { .. }
            | RegistryError::Io { .. }
            | RegistryError::Corrupt { .. }
            | RegistryError::Core(_)
            | RegistryError::Prepare(_)
            | RegistryError::Graph(_)
            | RegistryError::DuplicateBatch { .. } => ApiError::internal(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: &self.message,
                path: self.path.as_deref(),
                details: &self.details,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
