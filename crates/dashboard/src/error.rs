//! The error of page handlers, shown as an HTML page with its status code.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, DOCTYPE};

use crate::store::StoreError;

/// An error shown to the user; server-side details are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("you are not allowed to do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("the form has expired or did not come from this site; reload the page and retry")]
    Csrf,
    #[error("too many failed logins from your address; wait a minute and retry")]
    TooManyFailures,
    #[error("{0}")]
    TooLarge(String),
    #[error("another intel import is running; wait for it to finish and retry")]
    Busy,
    #[error("an internal error occurred; the server log has the details")]
    Internal,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::TooManyFailures => StatusCode::TOO_MANY_REQUESTS,
            PageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        match error {
            StoreError::Filter(message) => PageError::BadRequest(message),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "dashboard read failed");
                PageError::Internal
            }
        }
    }
}

impl From<api::DbError> for PageError {
    fn from(error: api::DbError) -> PageError {
        match error {
            api::DbError::NotFound(what) => PageError::NotFound(what.to_owned()),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "intel store read failed");
                PageError::Internal
            }
        }
    }
}

impl From<tokio::task::JoinError> for PageError {
    fn from(error: tokio::task::JoinError) -> PageError {
        tracing::error!(error = %error, "dashboard task failed");
        PageError::Internal
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "iocwatch: " (status.as_u16()) }
                    link rel="stylesheet" href="/static/app.css";
                }
                body {
                    main id="main" {
                        h1 { "Error " (status.as_u16()) }
                        p role="alert" { (self.to_string()) }
                        p { a href="/" { "Back to the overview" } }
                    }
                }
            }
        };
        (status, Html(page.into_string())).into_response()
    }
}

/// Runs blocking reads off the async threads.
pub async fn blocking<T, F>(f: F) -> Result<T, PageError>
where
    F: FnOnce() -> Result<T, PageError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}
