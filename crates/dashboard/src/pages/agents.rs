//! The agents page: status, last seen, version, address and alert counts.

use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use maud::html;

use super::alerts::filtered;
use super::layout::{empty, page};
use crate::error::{blocking, PageError};
use crate::login::Viewer;
use crate::store::{agents, format_epoch};
use crate::DashboardState;

/// GET /agents: every enrolled agent.
pub async fn list(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, PageError> {
    let db = state.sources.manager_db.clone();
    let rows = blocking(move || Ok(agents::list(&db)?)).await?;
    let body = html! {
        @if rows.is_empty() {
            (empty("No agent is enrolled. Enroll one with `iocwatch agent enroll`."))
        } @else {
            table {
                thead {
                    tr {
                        th scope="col" { "ID" }
                        th scope="col" { "Name" }
                        th scope="col" { "Status" }
                        th scope="col" { "Last seen (UTC)" }
                        th scope="col" { "Version" }
                        th scope="col" { "Address" }
                        th scope="col" { "Events received" }
                        th scope="col" { "Alerts" }
                        th scope="col" { "Dropped events" }
                    }
                }
                tbody {
                    @for agent in &rows {
                        tr {
                            td { (agent.id) }
                            td { (agent.name) }
                            td {
                                span class=(format!("status status-{}", agent.status)) { (agent.status.replace('_', " ")) }
                                @if agent.removed { " (removed)" }
                            }
                            td { (agent.last_seen.map(format_epoch).unwrap_or_else(|| "never".into())) }
                            td { (agent.version.as_deref().unwrap_or("")) }
                            td { (agent.address.as_deref().unwrap_or("")) }
                            td.num { (agent.events) }
                            td.num { a href=(filtered("agent", &agent.id)) { (agent.alerts) } }
                            td.num { (agent.dropped_events) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(page(&viewer, "Agents", "/agents", body).into_string()))
}
