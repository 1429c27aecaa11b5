//! The integration log page: intel lookups with result, latency and errors, newest first.

use axum::extract::{Query, State};
use axum::response::Html;
use axum::Extension;
use maud::html;

use super::layout::{empty, page, pager};
use crate::error::{blocking, PageError};
use crate::login::Viewer;
use crate::store::intlog::{self, LookupFilter};
use crate::DashboardState;

const RESULTS: &[&str] = &["match", "no_match", "suppressed", "error"];

/// GET /integrations: a page of the integration log.
pub async fn list(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Query(filter): Query<LookupFilter>,
) -> Result<Html<String>, PageError> {
    let log = state.sources.integration_log.clone();
    let query_filter = filter.clone();
    let lookups = blocking(move || Ok(intlog::page(&log, &query_filter)?)).await?;
    let query = serde_urlencoded::to_string([("result", &filter.result), ("q", &filter.q)])
        .unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/integrations" role="search" aria-label="Filter lookups" {
            p {
                label for="f-result" { "Result" }
                select id="f-result" name="result" {
                    option value="" selected[filter.result.is_empty()] { "Any" }
                    @for result in RESULTS {
                        option value=(result) selected[filter.result == *result] { (result) }
                    }
                }
            }
            p { label for="f-q" { "Hash, path or agent id" } input id="f-q" name="q" type="search" value=(filter.q); }
            p.actions { button type="submit" { "Filter" } " " a href="/integrations" { "Clear" } }
        }
        @if lookups.truncated {
            p.hint { "Only the newest " (intlog::TAIL_BYTES / (1024 * 1024)) " MiB of the log are read." }
        }
        @if lookups.unreadable > 0 {
            p.hint { (lookups.unreadable) " lines of the log are not lookup records and are left out." }
        }
        @if lookups.rows.is_empty() { (empty("No lookups.")) } @else {
            table {
                thead {
                    tr {
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Agent" }
                        th scope="col" { "Path" }
                        th scope="col" { "Hash" }
                        th scope="col" { "Result" }
                        th scope="col" { "Matches" }
                        th scope="col" { "Latency" }
                        th scope="col" { "Error" }
                    }
                }
                tbody {
                    @for lookup in &lookups.rows {
                        tr {
                            td { (super::alerts::short_time(&lookup.timestamp)) }
                            td { (lookup.agent_id) }
                            td { code { (lookup.path) } }
                            td { (lookup.algorithm) " " code.hash { (lookup.hash) } }
                            td { span class=(format!("result result-{}", lookup.result)) { (lookup.result) } }
                            td {
                                @for (event, attribute) in &lookup.matches {
                                    a href=(format!("/intel/events/{}", super::alerts::encode_segment(event))) { "event " (event) } " attribute " (attribute) " "
                                }
                            }
                            td.num { (format!("{:.1} µs", lookup.latency_us)) }
                            td { (lookup.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        (pager("/integrations", &query, lookups.page, lookups.has_next))
    };
    Ok(Html(
        page(&viewer, "Integration log", "/integrations", body).into_string(),
    ))
}
