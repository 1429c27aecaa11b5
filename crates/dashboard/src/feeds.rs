//! JSON feeds under `/iocwatch/`, authenticated by API key like the MISP API: alerts with
//! the alerts page's filters, one alert, agents and the integration log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::store::alerts::{self, AlertFilter};
use crate::store::intlog::{self, LookupFilter};
use crate::store::{agents, StoreError};
use crate::DashboardState;
use api::ApiError;

fn api_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Filter(message) => ApiError::bad_request(message),
        other => {
            tracing::error!(error = %other, source = ?std::error::Error::source(&other), "dashboard feed read failed");
            let message = "An internal error has occurred.";
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message, message)
        }
    }
}

async fn run<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(api_error),
        Err(error) => {
            tracing::error!(error = %error, "dashboard feed task failed");
            let message = "An internal error has occurred.";
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                message,
                message,
            ))
        }
    }
}

/// GET /iocwatch/alerts: alerts in Wazuh's JSON form, newest first, with `page` and `limit`.
pub async fn alerts(
    State(state): State<DashboardState>,
    Query(filter): Query<AlertFilter>,
) -> Result<Json<Value>, ApiError> {
    let db = state.sources.manager_db.clone();
    let limit = filter.page_size();
    let page = run(move || alerts::page(&db, &filter)).await?;
    let bodies: Vec<Value> = page.rows.into_iter().map(|row| row.body).collect();
    Ok(Json(json!({
        "page": page.page,
        "limit": limit,
        "has_next": page.has_next,
        "alerts": bodies,
    })))
}

/// GET /iocwatch/alerts/{id}: one alert, with the active-response results for its file.
pub async fn alert(
    State(state): State<DashboardState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let db = state.sources.manager_db.clone();
    let found = run(move || {
        let Some(alert) = alerts::by_id(&db, &id)? else {
            return Ok(None);
        };
        let quarantine = alerts::quarantine_results(&db, &alert)?;
        Ok(Some((alert, quarantine)))
    })
    .await?;
    let Some((alert, quarantine)) = found else {
        return Err(ApiError::not_found("alert"));
    };
    let quarantine: Vec<Value> = quarantine.into_iter().map(|row| row.body).collect();
    Ok(Json(
        json!({"alert": alert.body, "active_response": quarantine}),
    ))
}

/// GET /iocwatch/agents: every enrolled agent with its status and alert count.
pub async fn agents(State(state): State<DashboardState>) -> Result<Json<Value>, ApiError> {
    let db = state.sources.manager_db.clone();
    let rows = run(move || agents::list(&db)).await?;
    Ok(Json(json!({"agents": rows})))
}

/// GET /iocwatch/integrations: intel lookups from the integration log, newest first.
pub async fn integrations(
    State(state): State<DashboardState>,
    Query(filter): Query<LookupFilter>,
) -> Result<Json<Value>, ApiError> {
    let log = state.sources.integration_log.clone();
    let page = run(move || intlog::page(&log, &filter)).await?;
    Ok(Json(json!({
        "page": page.page,
        "has_next": page.has_next,
        "truncated": page.truncated,
        "lookups": page.rows,
    })))
}
