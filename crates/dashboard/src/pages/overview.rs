//! The overview: alerts over time, counts by level, top rules and agents, latest intel
//! matches and the newest alerts, updated live.

use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use maud::html;

use super::alerts::{alert_table, filtered, LiveFeed};
use super::chart::hourly_bars;
use super::layout::{empty, level_badge, page};
use crate::error::{blocking, PageError};
use crate::login::Viewer;
use crate::store::{alerts, overview};
use crate::DashboardState;

/// GET /: the overview page.
pub async fn show(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, PageError> {
    let db = state.sources.manager_db.clone();
    let (figures, latest) = blocking(move || {
        let figures = overview::read(&db, super::now_secs())?;
        let latest = alerts::page(
            &db,
            &alerts::AlertFilter {
                limit: Some(10),
                ..Default::default()
            },
        )?;
        Ok((figures, latest.rows))
    })
    .await?;
    let live = LiveFeed {
        after: figures.last_seq,
        query: String::new(),
        max_rows: Some(10),
    };
    let body = html! {
        p.total { (figures.total) (if figures.total == 1 { " alert stored." } else { " alerts stored." }) }
        section aria-labelledby="h-time" {
            h2 id="h-time" { "Alerts over time" }
            (hourly_bars(&figures.per_hour))
        }
        div.columns {
            section aria-labelledby="h-level" {
                h2 id="h-level" { "By level" }
                @if figures.by_level.is_empty() { (empty("No alerts yet.")) } @else {
                    table {
                        thead { tr { th scope="col" { "Level" } th scope="col" { "Alerts" } } }
                        tbody {
                            @for (level, count) in &figures.by_level {
                                tr {
                                    td { (level_badge(*level)) }
                                    td.num { a href=(filtered("level", &level.to_string())) { (count) } }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-rules" {
                h2 id="h-rules" { "Top rules" }
                @if figures.top_rules.is_empty() { (empty("No alerts yet.")) } @else {
                    table {
                        thead { tr { th scope="col" { "Rule" } th scope="col" { "Description" } th scope="col" { "Alerts" } } }
                        tbody {
                            @for (rule, description, count) in &figures.top_rules {
                                tr {
                                    td { a href=(filtered("rule_id", rule)) { (rule) } }
                                    td.wrap title=(description) { (shorten(description, 90)) }
                                    td.num { (count) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-agents" {
                h2 id="h-agents" { "Top agents" }
                @if figures.top_agents.is_empty() { (empty("No alerts yet.")) } @else {
                    table {
                        thead { tr { th scope="col" { "Agent" } th scope="col" { "Name" } th scope="col" { "Alerts" } } }
                        tbody {
                            @for (id, name, count) in &figures.top_agents {
                                tr {
                                    td { a href=(filtered("agent", id)) { (id) } }
                                    td { (name) }
                                    td.num { (count) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-matches" {
            h2 id="h-matches" { "Latest intel matches" }
            (alert_table(&figures.latest_matches, None))
        }
        section aria-labelledby="h-latest" {
            h2 id="h-latest" { "Latest alerts" }
            (alert_table(&latest, Some(&live)))
        }
    };
    Ok(Html(page(&viewer, "Overview", "/", body).into_string()))
}

/// Cuts `text` to `max_chars` characters, ending with an ellipsis when cut.
fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}
