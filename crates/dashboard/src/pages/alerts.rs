//! The alerts page (filters, paging, live updates), the alert detail page and the JSON of
//! new alerts that the pages poll.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::layout::{empty, level_badge, level_label, page, pager, query_link};
use crate::error::{blocking, PageError};
use crate::login::Viewer;
use crate::store::agents;
use crate::store::alerts::{self, AlertFilter, AlertRow};
use crate::DashboardState;

/// The query a live table polls for new alerts.
pub struct LiveFeed {
    /// Highest sequence number shown.
    pub after: i64,
    /// Filters, as a query string.
    pub query: String,
    /// Rows kept in the table, when bounded.
    pub max_rows: Option<usize>,
}

/// Renders alerts as a table; with `live`, the script adds new alerts at the top.
pub fn alert_table(rows: &[AlertRow], live: Option<&LiveFeed>) -> Markup {
    html! {
        @if rows.is_empty() && live.is_none() {
            (empty("No alerts."))
        } @else {
            @if let Some(live) = live {
                p.live-status id="live-status" aria-live="polite" {}
                table.alerts data-live-after=(live.after) data-live-query=(live.query)
                    data-live-max=[live.max_rows] {
                    (table_head())
                    tbody { @for row in rows { (alert_row(row)) } }
                }
            } @else {
                table.alerts {
                    (table_head())
                    tbody { @for row in rows { (alert_row(row)) } }
                }
            }
        }
    }
}

fn table_head() -> Markup {
    html! {
        thead {
            tr {
                th scope="col" { "Time (UTC)" }
                th scope="col" { "Level" }
                th scope="col" { "Rule" }
                th scope="col" { "Description" }
                th scope="col" { "Agent" }
                th scope="col" { "Intel" }
            }
        }
    }
}

fn alert_row(row: &AlertRow) -> Markup {
    html! {
        tr {
            td { a href=(format!("/alerts/{}", encode_segment(&row.id))) { (short_time(&row.timestamp)) } }
            td { (level_badge(row.level)) }
            td { (row.rule_id) }
            td.wrap { (row.description) }
            td { (row.agent_id) " " (row.agent_name) }
            td {
                @if let Some(event) = &row.misp_event_id {
                    "MISP event " (event)
                }
            }
        }
    }
}

/// Shortens a Wazuh timestamp (`2026-12-04T10:00:00.000+0000`) to `2026-12-04 10:00:00`.
pub fn short_time(timestamp: &str) -> String {
    timestamp.get(..19).unwrap_or(timestamp).replace('T', " ")
}

/// Percent-encodes a path segment.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn filter_form(filter: &AlertFilter, agents: &[agents::AgentRow]) -> Markup {
    html! {
        form.filters method="get" action="/alerts" role="search" aria-label="Filter alerts" {
            p { label for="f-from" { "From (UTC)" } input id="f-from" name="from" type="text" placeholder="YYYY-MM-DD or YYYY-MM-DDTHH:MM" value=(filter.from); }
            p { label for="f-to" { "To (UTC)" } input id="f-to" name="to" type="text" placeholder="YYYY-MM-DD or YYYY-MM-DDTHH:MM" value=(filter.to); }
            p {
                label for="f-level" { "Minimum level" }
                select id="f-level" name="level" {
                    option value="" selected[filter.level.is_empty()] { "Any" }
                    @for level in (0..=16).rev() {
                        @let value = level.to_string();
                        option value=(value) selected[filter.level.trim() == value] { (level) " " (level_label(level)) }
                    }
                }
            }
            p { label for="f-rule" { "Rule id" } input id="f-rule" name="rule_id" type="text" value=(filter.rule_id); }
            p {
                label for="f-agent" { "Agent" }
                select id="f-agent" name="agent" {
                    option value="" selected[filter.agent.is_empty()] { "Any" }
                    @for agent in agents {
                        option value=(agent.id) selected[filter.agent.trim() == agent.id] { (agent.id) " " (agent.name) }
                    }
                }
            }
            p { label for="f-group" { "Rule group" } input id="f-group" name="group" type="text" value=(filter.group); }
            p { label for="f-q" { "Text" } input id="f-q" name="q" type="search" value=(filter.q); }
            p.check {
                label for="f-intel" {
                    input id="f-intel" name="intel" type="checkbox" value="1" checked[!filter.intel.trim().is_empty()];
                    " Intel matches only"
                }
            }
            p.actions { button type="submit" { "Filter" } " " a href="/alerts" { "Clear" } }
        }
        p.presets {
            "Since: "
            @for (label, seconds) in PRESETS {
                a href=(preset_link(filter, *seconds)) { (label) } " "
            }
        }
    }
}

/// Quick time ranges: `(label, seconds back from now)`.
const PRESETS: &[(&str, i64)] = &[
    ("1 hour", 3600),
    ("24 hours", 24 * 3600),
    ("7 days", 7 * 24 * 3600),
];

/// Returns the alerts page with the other filters kept and `from` set `seconds` ago.
fn preset_link(filter: &AlertFilter, seconds: i64) -> String {
    let since = time::OffsetDateTime::from_unix_timestamp(super::now_secs() - seconds)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default();
    let preset = AlertFilter {
        from: since,
        to: String::new(),
        ..filter.clone()
    };
    format!("/alerts?{}", preset.query_string())
}

/// GET /alerts: filtered alerts, newest first; the first page updates live.
pub async fn list(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<AlertFilter>,
) -> Result<Html<String>, PageError> {
    let db = state.sources.manager_db.clone();
    let query_filter = filter.clone();
    let (result, agent_rows, last_seq) = blocking(move || {
        let result = alerts::page(&db, &query_filter);
        let agent_rows = agents::list(&db)?;
        let last_seq = alerts::last_seq(&db)?;
        Ok((result, agent_rows, last_seq))
    })
    .await?;
    let query = filter.query_string();
    let body = match result {
        Ok(alert_page) => {
            let live = (alert_page.page == 1).then(|| LiveFeed {
                after: last_seq,
                query: query.clone(),
                max_rows: None,
            });
            html! {
                (filter_form(&filter, &agent_rows))
                (alert_table(&alert_page.rows, live.as_ref()))
                (pager("/alerts", &query, alert_page.page, alert_page.has_next))
            }
        }
        Err(crate::store::StoreError::Filter(message)) => html! {
            (filter_form(&filter, &agent_rows))
            p.error role="alert" { (message) }
        },
        Err(other) => return Err(other.into()),
    };
    Ok(Html(page(&viewer, "Alerts", "/alerts", body).into_string()))
}

#[derive(Debug, Deserialize)]
pub struct After {
    #[serde(default)]
    after: i64,
}

/// GET /live/alerts?after=SEQ&filters: alerts newer than `after`, oldest first, as JSON.
pub async fn live(
    State(state): State<DashboardState>,
    Query(filter): Query<AlertFilter>,
    Query(after): Query<After>,
) -> Result<Json<Value>, PageError> {
    let db = state.sources.manager_db.clone();
    let rows = blocking(move || Ok(alerts::since(&db, &filter, after.after)?)).await?;
    let last = rows.last().map_or(after.after, |r| r.seq);
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut value {
                map.insert("level_label".into(), level_label(row.level).into());
                map.insert("time".into(), short_time(&row.timestamp).into());
                map.insert(
                    "href".into(),
                    format!("/alerts/{}", encode_segment(&row.id)).into(),
                );
            }
            value
        })
        .collect();
    Ok(Json(json!({"alerts": rows, "last_seq": last})))
}

/// GET /alerts/{id}: one alert with its MISP event, quarantine results and full JSON.
pub async fn detail(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let db = state.sources.manager_db.clone();
    let api_db = state.api.db.clone();
    let access = api::Viewer::of(&viewer.user);
    let (alert, quarantine, event) = blocking(move || {
        let alert =
            alerts::by_id(&db, &id)?.ok_or_else(|| PageError::NotFound(format!("alert `{id}`")))?;
        let quarantine = alerts::quarantine_results(&db, &alert)?;
        let event = match &alert.misp_event_id {
            Some(event_id) => match api_db.event(event_id, false, &access) {
                Ok(event) => {
                    let sightings = api_db.visible_sightings(Some(event.meta.id), None, &access)?;
                    Some((event, sightings))
                }
                Err(api::DbError::NotFound(_)) => None,
                Err(other) => return Err(other.into()),
            },
            None => None,
        };
        Ok((alert, quarantine, event))
    })
    .await?;
    let body = super::detail::render(&alert, &quarantine, event.as_ref());
    let title = format!("Alert {}", alert.id);
    Ok(Html(page(&viewer, &title, "/alerts", body).into_string()))
}

/// Returns a link to the alerts page with one filter set.
pub fn filtered(name: &str, value: &str) -> String {
    query_link("/alerts", &[(name, value)])
}
