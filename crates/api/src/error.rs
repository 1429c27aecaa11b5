//! The API's one error type, rendered in MISP's shape: `{"name", "message", "url"}` with
//! MISP's status codes, plus `errors` per field for rejected attributes.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::db::DbError;

/// An error returned to the client (boxed, so that results stay small).
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorBody>);

#[derive(Debug, Clone)]
struct ErrorBody {
    status: StatusCode,
    name: String,
    message: String,
    /// Per-field errors, as MISP returns for invalid attributes (`{"value": ["..."]}`).
    errors: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, name: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError(Box::new(ErrorBody {
            status,
            name: name.into(),
            message: message.into(),
            errors: None,
        }))
    }

    /// HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// Returns the 403 error MISP returns for a missing or wrong key, with its text.
    pub fn unauthenticated() -> Self {
        let message = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header.";
        ApiError::new(StatusCode::FORBIDDEN, message, message)
    }

    pub fn forbidden() -> Self {
        let message = "You do not have permission to do that.";
        ApiError::new(StatusCode::FORBIDDEN, message, message)
    }

    pub fn not_found(what: &str) -> Self {
        let message = format!("Invalid {what}.");
        ApiError::new(StatusCode::NOT_FOUND, message.clone(), message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, message.clone(), message)
    }

    /// Returns a rejected write with the reasons per field, as MISP's `Could not add Attribute`.
    pub fn validation(name: &str, errors: Map<String, Value>) -> Self {
        let mut error = ApiError::new(StatusCode::FORBIDDEN, name, name);
        error.0.errors = Some(Value::Object(errors));
        error
    }

    /// Returns a write the store rejected: `message` filed under `field` of the entry
    /// `kind` (`Event`, `Attribute`, ...), as [`ApiError::validation`] does under `name`.
    pub fn rejected(name: &str, kind: &str, field: &str, message: String) -> Self {
        let mut errors = Map::new();
        errors.insert(kind.into(), json!({ field: [message] }));
        ApiError::validation(name, errors)
    }

    /// Returns a rejected write whose reason is one message, as MISP's `saveFailResponse`
    /// with an error string: `{"saved": false, "errors": "..."}` with status 403.
    pub fn save_failed(name: &str, message: impl Into<String>) -> Self {
        let mut error = ApiError::new(StatusCode::FORBIDDEN, name, name);
        error.0.errors = Some(Value::String(message.into()));
        error
    }

    pub fn too_many_failures() -> Self {
        let message = "Too many failed authentication attempts. Try again later.";
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, message, message)
    }

    fn body(&self, url: &str) -> Value {
        let inner = &self.0;
        let mut body = json!({"name": inner.name, "message": inner.message, "url": url});
        if let Some(errors) = &inner.errors {
            body["saved"] = Value::Bool(false);
            body["errors"] = errors.clone();
        }
        body
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound(what) => ApiError::not_found(what),
            DbError::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, message, message),
            DbError::SimilarAttribute(_) => {
                let mut errors = Map::new();
                errors.insert("value".into(), json!([err.to_string()]));
                ApiError::validation("Could not add Attribute", errors)
            }
            DbError::Rejected {
                kind,
                field,
                message,
            } => ApiError::rejected(&format!("Could not save {kind}"), kind, field, message),
            other => {
                // The detail is logged once here; the client sees a generic message.
                tracing::error!(error = %other, "API request failed on the database");
                let message = "An internal error has occurred.";
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message, message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The URL is filled in by `fill_error_url`, which has the request path.
        let mut response = (self.status(), Json(self.body(""))).into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Rewrites error bodies so that `url` contains the path of the request, as MISP does.
pub async fn fill_error_url(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let Some(error) = response.extensions().get::<ApiError>() else {
        return response;
    };
    let mut filled = (error.status(), Json(error.body(&path))).into_response();
    // Keep what the refusing layer said about the connection.
    if let Some(connection) = response.headers().get(axum::http::header::CONNECTION) {
        filled
            .headers_mut()
            .insert(axum::http::header::CONNECTION, connection.clone());
    }
    filled
}
