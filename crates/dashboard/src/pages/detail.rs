//! The body of the alert detail page: summary, quarantine status, the matched MISP event with
//! its tags and sightings, and the full alert JSON.

use api::db::{FullEvent, SightingRow};
use maud::{html, Markup};
use serde_json::Value;

use super::alerts::filtered;
use super::layout::{empty, level_badge};
use crate::store::alerts::AlertRow;
use crate::store::format_epoch;

/// Returns the string at `pointer` in `value`, numbers included, or "".
fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Returns MISP's name of a threat level id.
pub fn threat_level(id: Option<i64>) -> &'static str {
    match id {
        Some(1) => "1 high",
        Some(2) => "2 medium",
        Some(3) => "3 low",
        _ => "4 undefined",
    }
}

/// Returns the name of a MISP sighting type.
pub fn sighting_type(kind: i64) -> &'static str {
    match kind {
        0 => "sighting",
        1 => "false positive",
        2 => "expiration",
        _ => "other",
    }
}

/// Renders the detail page's body.
pub fn render(
    alert: &AlertRow,
    quarantine: &[AlertRow],
    event: Option<&(FullEvent, Vec<SightingRow>)>,
) -> Markup {
    html! {
        (summary(alert))
        section aria-labelledby="h-quarantine" {
            h2 id="h-quarantine" { "Quarantine" }
            (quarantine_status(quarantine))
        }
        section aria-labelledby="h-misp" {
            h2 id="h-misp" { "MISP event" }
            (misp_section(alert, event))
        }
        section aria-labelledby="h-json" {
            h2 id="h-json" { "Alert JSON" }
            pre.json tabindex="0" aria-label="Alert JSON" {
                code { (serde_json::to_string_pretty(&alert.body).unwrap_or_default()) }
            }
        }
    }
}

fn summary(alert: &AlertRow) -> Markup {
    let body = &alert.body;
    let hashes = ["md5", "sha1", "sha256"].map(|algorithm| {
        let after = text(body, &format!("/syscheck/{algorithm}_after"));
        let before = text(body, &format!("/syscheck/{algorithm}_before"));
        (algorithm, if after.is_empty() { before } else { after })
    });
    html! {
        dl.summary {
            dt { "Time (UTC)" } dd { (alert.timestamp) }
            dt { "Level" } dd { (level_badge(alert.level)) }
            dt { "Rule" } dd { a href=(filtered("rule_id", &alert.rule_id)) { (alert.rule_id) } " " (alert.description) }
            dt { "Groups" } dd {
                @for (index, group) in alert.groups.iter().enumerate() {
                    @if index > 0 { ", " }
                    a href=(filtered("group", group)) { (group) }
                }
            }
            dt { "Agent" } dd { a href=(filtered("agent", &alert.agent_id)) { (alert.agent_id) } " " (alert.agent_name) " " (text(body, "/agent/ip")) }
            @if !alert.path.is_empty() {
                dt { "File" } dd { code { (alert.path) } " (" (text(body, "/syscheck/event")) ")" }
            }
            @for (algorithm, value) in &hashes {
                @if !value.is_empty() {
                    dt { (algorithm) } dd { code.hash { (value) } }
                }
            }
        }
    }
}

fn quarantine_status(results: &[AlertRow]) -> Markup {
    if results.is_empty() {
        return empty("No active-response result was reported for this file after this alert.");
    }
    html! {
        ul {
            @for result in results {
                @let status = text(&result.body, "/data/active_response/status");
                li {
                    strong { (status) } " at " (result.timestamp) ": "
                    @if status == "done" {
                        "moved to " code { (text(&result.body, "/data/active_response/quarantine_path")) }
                    } @else {
                        (text(&result.body, "/data/active_response/message"))
                    }
                    " (" a href=(format!("/alerts/{}", super::alerts::encode_segment(&result.id))) { "alert " (result.id) } ")"
                }
            }
        }
    }
}

fn misp_section(alert: &AlertRow, event: Option<&(FullEvent, Vec<SightingRow>)>) -> Markup {
    let misp = alert
        .body
        .pointer("/data/misp")
        .cloned()
        .unwrap_or(Value::Null);
    if misp.is_null() {
        return empty("This alert has no intel match.");
    }
    let error = text(&misp, "/error");
    let attribute_uuid = text(&misp, "/attribute_uuid");
    html! {
        @if !error.is_empty() {
            p.error { "The intel lookup failed: " (error) }
        }
        dl.summary {
            dt { "Matched value" } dd { code.hash { (text(&misp, "/value")) } " (" (text(&misp, "/type")) ", " (text(&misp, "/category")) ")" }
            dt { "Attribute" } dd { (text(&misp, "/attribute_id")) " " code { (attribute_uuid) } }
            @if let Some(list) = misp.get("warninglists").and_then(Value::as_array) {
                dt { "Warninglists" } dd { @for name in list { (name.as_str().unwrap_or_default()) " " } }
            }
        }
        @match event {
            Some((event, sightings)) => (event_details(event, sightings, &attribute_uuid)),
            None => p { "MISP event " (text(&misp, "/event_id")) " (" (text(&misp, "/event_info")) ") is no longer in the intel store." },
        }
    }
}

fn event_details(event: &FullEvent, sightings: &[SightingRow], attribute_uuid: &str) -> Markup {
    let meta = &event.meta;
    let attribute = event
        .attributes
        .iter()
        .chain(event.objects.iter().flat_map(|o| o.attributes.iter()))
        .find(|a| a.uuid == attribute_uuid);
    html! {
        dl.summary.misp-event {
            dt { "Event" } dd { a href=(format!("/intel/events/{}", meta.id)) { (meta.id) } " " strong { (meta.info) } }
            dt { "UUID" } dd { code { (meta.uuid) } }
            dt { "Date" } dd { (meta.date.as_deref().unwrap_or("")) }
            dt { "Threat level" } dd { (threat_level(meta.threat_level_id)) }
            dt { "Organisation" } dd { (meta.orgc.as_deref().unwrap_or("")) }
            dt { "Event tags" } dd { (tag_list(&meta.tags)) }
            @if let Some(attribute) = attribute {
                dt { "Attribute tags" } dd { (tag_list(&attribute.tags)) }
            }
        }
        h3 { "Sightings" }
        @if sightings.is_empty() { (empty("No sightings.")) } @else {
            table {
                thead { tr { th scope="col" { "Date (UTC)" } th scope="col" { "Type" } th scope="col" { "Source" } th scope="col" { "Attribute" } } }
                tbody {
                    @for sighting in sightings {
                        tr {
                            td { (format_epoch(sighting.date_sighting)) }
                            td { (sighting_type(sighting.r#type)) }
                            td { (sighting.source) }
                            td { code { (sighting.attribute_uuid) } }
                        }
                    }
                }
            }
        }
    }
}

/// Renders tags as a list, or "none".
pub fn tag_list(tags: &[String]) -> Markup {
    html! {
        @if tags.is_empty() { "none" } @else {
            ul.tags { @for tag in tags { li.tag { (tag) } } }
        }
    }
}
