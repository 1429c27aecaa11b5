//! Feed handlers: index, add and fetch.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::{blocking, first_segment, unwrap_key, JsonBody};
use crate::db::{FeedRow, NewFeed};
use crate::{feed_fetch, ApiError, AppState};

fn feed_json(f: &FeedRow) -> Value {
    json!({"Feed": {
        "id": f.id.to_string(),
        "name": f.name,
        "provider": f.provider,
        "url": f.url,
        "rules": "",
        "enabled": f.enabled,
        "distribution": "3",
        "sharing_group_id": "0",
        "tag_id": "0",
        "default": false,
        "source_format": f.source_format,
        "fixed_event": false,
        "delta_merge": false,
        "event_id": "0",
        "publish": false,
        "override_ids": false,
        "settings": "{}",
        "input_source": f.input_source,
        "delete_local_file": false,
        "lookup_visible": false,
        "headers": "",
        "caching_enabled": false,
        "force_to_ids": false,
        "orgc_id": "0",
        "last_fetched": f.last_fetched.map(|t| t.to_string()),
    }})
}

fn text(body: &Value, key: &str) -> Option<String> {
    body.get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub async fn index(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let feeds = blocking(move || Ok(state.db.feeds()?)).await?;
    Ok(Json(Value::Array(feeds.iter().map(feed_json).collect())))
}

fn parse_feed(body: &Value) -> Result<NewFeed, ApiError> {
    let url = text(body, "url").ok_or_else(|| {
        ApiError::bad_request("a feed needs a `url`: an http(s) URL or a local path")
    })?;
    let network = url.starts_with("http://") || url.starts_with("https://");
    if url.contains("://") && !network {
        return Err(ApiError::bad_request(format!(
            "unsupported feed URL `{url}`; use http, https or a local path"
        )));
    }
    let source_format = text(body, "source_format").unwrap_or_else(|| "misp".into());
    if !matches!(source_format.as_str(), "misp" | "freetext" | "csv") {
        return Err(ApiError::bad_request(format!(
            "unsupported feed source_format `{source_format}`; use misp, freetext or csv"
        )));
    }
    let enabled = match body.get("enabled") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s != "0" && s != "false",
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        _ => true,
    };
    Ok(NewFeed {
        name: text(body, "name").unwrap_or_else(|| url.clone()),
        provider: text(body, "provider").unwrap_or_default(),
        input_source: if network { "network" } else { "local" }.into(),
        url,
        source_format,
        enabled,
    })
}

pub async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let feed = parse_feed(&unwrap_key(body, "Feed"))?;
    let stored = blocking(move || Ok(state.db.add_feed(&feed)?)).await?;
    Ok(Json(feed_json(&stored)))
}

/// `feeds/fetchFromFeed/{id}`: imports the feed now and reports what it stored.
pub async fn fetch(
    State(state): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = first_segment(&rest)
        .parse()
        .map_err(|_| ApiError::not_found("feed"))?;
    let summary = blocking(move || {
        let feed = state.db.feed(id)?;
        let data_dir = state
            .db
            .path()
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .to_owned();
        let summary = feed_fetch::fetch(&feed, &data_dir).map_err(|e| {
            tracing::warn!(feed = id, error = %e, "feed fetch failed");
            ApiError::bad_request(format!("failed to fetch feed {id}: {e}"))
        })?;
        state.db.mark_fetched(id)?;
        state.notify_change();
        Ok(summary)
    })
    .await?;
    Ok(Json(json!({
        "result": format!(
            "Fetched {} file(s): {} event(s), {} attribute(s) stored, {} file(s) failed.",
            summary.files, summary.events, summary.attributes, summary.failed_files
        )
    })))
}
