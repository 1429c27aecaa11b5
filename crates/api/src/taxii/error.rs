//! TAXII 2.1 error messages: `title`, `description` and `http_status` (a string, as the
//! specification types it), sent as `application/taxii+json;version=2.1`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::TAXII_MEDIA_TYPE;
use crate::db::DbError;

/// Value of `WWW-Authenticate` on 401 responses: TAXII clients send HTTP Basic.
const CHALLENGE: &str = "Basic realm=\"iocwatch TAXII\", charset=\"UTF-8\"";

/// An error returned to a TAXII client.
#[derive(Debug, Clone)]
pub struct TaxiiError {
    status: StatusCode,
    title: &'static str,
    description: String,
}

impl TaxiiError {
    pub fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError {
            status,
            title,
            description: description.into(),
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        TaxiiError::new(StatusCode::BAD_REQUEST, "Invalid request", description)
    }

    pub fn unauthorized() -> Self {
        TaxiiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            "missing or wrong credentials; send HTTP Basic with the user name and its API key \
             as the password, or the API key alone in the Authorization header",
        )
    }

    pub fn forbidden(description: impl Into<String>) -> Self {
        TaxiiError::new(StatusCode::FORBIDDEN, "Forbidden", description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        TaxiiError::new(StatusCode::NOT_FOUND, "Not found", description)
    }

    pub fn method_not_allowed() -> Self {
        TaxiiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "this TAXII resource does not support the request method",
        )
    }

    pub fn not_acceptable(accept: &str) -> Self {
        TaxiiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "Not acceptable",
            format!("the Accept header `{accept}` names no supported media type; request {TAXII_MEDIA_TYPE}"),
        )
    }

    pub fn too_many_failures() -> Self {
        TaxiiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "too many failed authentication attempts from this address; try again later",
        )
    }

    pub fn internal() -> Self {
        TaxiiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "an internal error has occurred",
        )
    }
}

impl From<DbError> for TaxiiError {
    fn from(err: DbError) -> Self {
        // The detail is logged once here; the client sees a generic message.
        tracing::error!(error = %err, "TAXII request failed on the database");
        TaxiiError::internal()
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "description": self.description,
            "http_status": self.status.as_u16().to_string(),
        });
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, TAXII_MEDIA_TYPE)],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
        }
        response
    }
}
