//! Intel pages: events and a search by value, one event with its attributes and sightings,
//! the warninglists, and the import form (users who may write only).

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::detail::{sighting_type, tag_list, threat_level};
use super::layout::{empty, page, pager};
use crate::error::{blocking, PageError};
use crate::login::{CsrfCheck, Viewer};
use crate::store::{format_epoch, intel};
use crate::DashboardState;

/// Attributes listed on an event's page at most.
const MAX_EVENT_ATTRIBUTES: usize = 2000;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    /// Value searched among attributes.
    q: String,
    page: Option<u32>,
}

fn intel_nav(viewer: &Viewer) -> Markup {
    html! {
        p.subnav {
            a href="/intel" { "Events" } " · "
            a href="/intel/warninglists" { "Warninglists" }
            @if viewer.user.role.can_write() {
                " · " a href="/intel/import" { "Import" }
            }
        }
    }
}

/// GET /intel: the search form, its results, and a page of events.
pub async fn events(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Query(query): Query<EventsQuery>,
) -> Result<Html<String>, PageError> {
    let db = state.api.db.path().to_owned();
    let page_number = query.page.unwrap_or(1).max(1);
    let text = query.q.clone();
    let access = api::Viewer::of(&viewer.user);
    let (hits, (rows, has_next)) = blocking(move || {
        Ok((
            intel::search(&db, &text, &access)?,
            intel::events(&db, page_number, &access)?,
        ))
    })
    .await?;
    let body = html! {
        (intel_nav(&viewer))
        form.filters method="get" action="/intel" role="search" aria-label="Search attributes" {
            p { label for="f-q" { "Value (hash, domain, ...)" } input id="f-q" name="q" type="search" value=(query.q); }
            p.actions { button type="submit" { "Search" } }
        }
        @if !query.q.trim().is_empty() {
            section aria-labelledby="h-hits" {
                h2 id="h-hits" { "Attributes containing “" (query.q.trim()) "”" }
                @if hits.is_empty() { (empty("No attribute matches.")) } @else {
                    table {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Category" } th scope="col" { "Value" } th scope="col" { "Detection (to_ids)" } } }
                        tbody {
                            @for hit in &hits {
                                tr {
                                    td { a href=(format!("/intel/events/{}", hit.event_id)) { (hit.event_id) } " " (hit.event_info) }
                                    td { (hit.r#type) }
                                    td { (hit.category) }
                                    td { code.hash { (hit.value) } }
                                    td { (if hit.to_ids { "yes" } else { "no" }) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-events" {
            h2 id="h-events" { "Events" }
            @if rows.is_empty() { (empty("No events. Import intel with `iocwatch intel import` or the import page.")) } @else {
                table {
                    thead { tr { th scope="col" { "ID" } th scope="col" { "Info" } th scope="col" { "Date" } th scope="col" { "Threat level" } th scope="col" { "Tags" } th scope="col" { "Attributes" } } }
                    tbody {
                        @for event in &rows {
                            tr {
                                td { a href=(format!("/intel/events/{}", event.id)) { (event.id) } }
                                td { (event.info) }
                                td { (event.date.as_deref().unwrap_or("")) }
                                td { (threat_level(event.threat_level_id)) }
                                td { (tag_list(&event.tags)) }
                                td.num { (event.attributes) }
                            }
                        }
                    }
                }
            }
            (pager("/intel", "", page_number, has_next))
        }
    };
    Ok(Html(page(&viewer, "Intel", "/intel", body).into_string()))
}

/// GET /intel/events/{id}: one event with attributes, objects and sightings.
pub async fn event(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let db = state.api.db.clone();
    let access = api::Viewer::of(&viewer.user);
    let (event, sightings, correlations) = blocking(move || {
        let event = db.event(&id, false, &access)?;
        let sightings = db.visible_sightings(Some(event.meta.id), None, &access)?;
        let correlations = db.event_correlations(&event, false, &access)?;
        Ok((event, sightings, correlations))
    })
    .await?;
    let meta = &event.meta;
    let total = event.attributes.len()
        + event
            .objects
            .iter()
            .map(|o| o.attributes.len())
            .sum::<usize>();
    let attributes = event
        .attributes
        .iter()
        .map(|a| (None, a))
        .chain(
            event
                .objects
                .iter()
                .flat_map(|o| o.attributes.iter().map(move |a| (Some(o.name.as_str()), a))),
        )
        .take(MAX_EVENT_ATTRIBUTES);
    let body = html! {
        (intel_nav(&viewer))
        dl.summary {
            dt { "Info" } dd { (meta.info) }
            dt { "UUID" } dd { code { (meta.uuid) } }
            dt { "Date" } dd { (meta.date.as_deref().unwrap_or("")) }
            dt { "Threat level" } dd { (threat_level(meta.threat_level_id)) }
            dt { "Organisation" } dd { (meta.orgc.as_deref().unwrap_or("")) }
            dt { "Published" } dd { (if meta.published { "yes" } else { "no" }) }
            dt { "Tags" } dd { (tag_list(&meta.tags)) }
            dt { "Galaxies" } dd { (galaxy_list(&meta.galaxies)) }
        }
        h2 { "Related events" }
        @if correlations.related_events.is_empty() {
            (empty("No other event shares a value with this one."))
        } @else {
            table {
                caption { "Events sharing at least one value with this event" }
                thead { tr { th scope="col" { "Event" } th scope="col" { "Info" } th scope="col" { "Date" } th scope="col" { "Organisation" } } }
                tbody {
                    @for related in &correlations.related_events {
                        tr {
                            td { a href=(format!("/intel/events/{}", related.id)) { (related.id) } }
                            td { (related.info) }
                            td { (related.date.as_deref().unwrap_or("")) }
                            td { (related.orgc.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if !correlations.over_correlating.is_empty() {
            p.hint {
                (correlations.over_correlating.len())
                " attribute values are shared by more events than the correlation limit and are not linked."
            }
        }
        h2 { "Attributes" }
        @if total > MAX_EVENT_ATTRIBUTES {
            p.hint {
                "The first " (MAX_EVENT_ATTRIBUTES) " of " (total) " attributes are shown; "
                "search by value to find the others."
            }
        }
        table {
            thead { tr { th scope="col" { "Object" } th scope="col" { "Type" } th scope="col" { "Category" } th scope="col" { "Value" } th scope="col" { "Detection (to_ids)" } th scope="col" { "Tags" } } }
            tbody {
                @for (object, attribute) in attributes {
                    tr {
                        td { (object.unwrap_or("")) }
                        td { (attribute.r#type) }
                        td { (attribute.category) }
                        td { code.hash { (attribute.value) } }
                        td { (if attribute.to_ids { "yes" } else { "no" }) }
                        td { (tag_list(&attribute.tags)) }
                    }
                }
            }
        }
        h2 { "Sightings" }
        @if sightings.is_empty() { (empty("No sightings.")) } @else {
            table {
                thead { tr { th scope="col" { "Date (UTC)" } th scope="col" { "Type" } th scope="col" { "Source" } } }
                tbody {
                    @for sighting in &sightings {
                        tr { td { (format_epoch(sighting.date_sighting)) } td { (sighting_type(sighting.r#type)) } td { (sighting.source) } }
                    }
                }
            }
        }
    };
    let title = format!("Event {}", meta.id);
    Ok(Html(page(&viewer, &title, "/intel", body).into_string()))
}

/// Galaxy clusters as "type: value" items, ATT&CK ids included in the value.
fn galaxy_list(clusters: &[::intel::galaxy::GalaxyCluster]) -> Markup {
    html! {
        @if clusters.is_empty() { "none" } @else {
            ul.tags { @for cluster in clusters { li.tag { (cluster.r#type) ": " (cluster.value) } } }
        }
    }
}

/// GET /intel/warninglists: the warninglists and the action a match takes.
pub async fn warninglists(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Html<String>, PageError> {
    let db = state.api.db.path().to_owned();
    let lists = blocking(move || Ok(intel::warninglists(&db)?)).await?;
    let body = html! {
        (intel_nav(&viewer))
        p { "A value on a " strong { "suppress" } " list raises no detection; on an " strong { "annotate" } " list the detection is kept and marked." }
        @if lists.is_empty() { (empty("No warninglists.")) } @else {
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Action" } th scope="col" { "Entries" } th scope="col" { "Attribute types" } th scope="col" { "Description" } } }
                tbody {
                    @for list in &lists {
                        tr {
                            td { (list.name) }
                            td { (list.r#type) }
                            td { strong { (list.action) } }
                            td.num { (list.entries) }
                            td { (list.matching_attributes.join(", ")) }
                            td { (list.description) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        page(&viewer, "Warninglists", "/intel", body).into_string(),
    ))
}

fn import_body(viewer: &Viewer, result: Option<Markup>) -> Markup {
    html! {
        (intel_nav(viewer))
        @if let Some(result) = result { (result) }
        form method="post" action="/intel/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(viewer.session.csrf);
            p {
                label for="f-file" { "Intel file" }
                input id="f-file" name="file" type="file" required;
            }
            p.hint { "MISP event JSON, STIX 2.x bundles, warninglists, CSV and text hash lists; the format is detected from the content. At most " (crate::MAX_UPLOAD_BYTES / (1024 * 1024)) " MiB." }
            p { button type="submit" { "Import" } }
        }
    }
}

/// GET /intel/import: the upload form.
pub async fn import_form(Extension(viewer): Extension<Viewer>) -> Html<String> {
    Html(
        page(
            &viewer,
            "Import intel",
            "/intel",
            import_body(&viewer, None),
        )
        .into_string(),
    )
}

/// Keeps letters, digits, `.`, `-` and `_` of an uploaded file's name, which the importer
/// may use to tell CSV from text.
fn safe_file_name(name: Option<&str>) -> String {
    let cleaned: String = name
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    if cleaned.is_empty() {
        "upload".to_owned()
    } else {
        cleaned.chars().take(100).collect()
    }
}

/// An uploaded file, written to a temporary folder that is deleted on drop.
struct Upload {
    folder: tempfile::TempDir,
    path: PathBuf,
}

/// Maps an error reading the multipart body to a page error: 413 past the size limit.
fn upload_error(error: &axum::extract::multipart::MultipartError, limit: usize) -> PageError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(limit);
    }
    PageError::BadRequest(format!("failed to read the upload: {}", error.body_text()))
}

fn too_large(limit: usize) -> PageError {
    PageError::TooLarge(format!(
        "the file is larger than {limit} bytes; split it and import the parts"
    ))
}

/// Reads the form. Unless a header already carried the CSRF token, the `csrf` field must
/// come before the file, so that no file is read for a forged request.
async fn read_upload(
    viewer: &Viewer,
    check: CsrfCheck,
    multipart: &mut Multipart,
    limit: usize,
) -> Result<Upload, PageError> {
    let mut csrf_ok = check == CsrfCheck::Done;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| upload_error(&e, limit))?
    {
        match field.name() {
            Some("csrf") => {
                let token = field.text().await.unwrap_or_default();
                csrf_ok = viewer.session.csrf_matches(&token);
            }
            Some("file") if csrf_ok => {
                let name = safe_file_name(field.file_name());
                return save_upload(field, &name, limit).await;
            }
            _ => {}
        }
    }
    if csrf_ok {
        Err(PageError::BadRequest(
            "the form has no file; choose one and retry".into(),
        ))
    } else {
        Err(PageError::Csrf)
    }
}

/// Streams the file field to a temporary file named `name`, chunk by chunk.
async fn save_upload(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
    limit: usize,
) -> Result<Upload, PageError> {
    let internal = |what: &'static str| {
        move |e: std::io::Error| {
            tracing::error!(error = %e, "{what}");
            PageError::Internal
        }
    };
    let folder = tempfile::tempdir().map_err(internal("failed to create an upload folder"))?;
    let path = folder.path().join(name);
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(internal("failed to store an upload"))?;
    let mut size = 0usize;
    while let Some(chunk) = field.chunk().await.map_err(|e| upload_error(&e, limit))? {
        size += chunk.len();
        if size > limit {
            tracing::warn!(file = %name, limit, "intel upload rejected: file too large");
            return Err(too_large(limit));
        }
        file.write_all(&chunk)
            .await
            .map_err(internal("failed to store an upload"))?;
    }
    file.flush()
        .await
        .map_err(internal("failed to store an upload"))?;
    Ok(Upload { folder, path })
}

/// POST /intel/import: imports the uploaded file with the intel importer, one import at a
/// time. A second import meanwhile is rejected with 503.
pub async fn import(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    check: Option<Extension<CsrfCheck>>,
    mut multipart: Multipart,
) -> Result<Html<String>, PageError> {
    let Some(Extension(check)) = check else {
        return Err(PageError::Csrf);
    };
    let Ok(_permit) = state.imports.clone().try_acquire_owned() else {
        tracing::warn!(user = %viewer.user.name, "intel upload rejected: another import is running");
        return Err(PageError::Busy);
    };
    let upload = read_upload(&viewer, check, &mut multipart, state.upload_limit).await?;
    let data_dir = state.intel_dir();
    let user = viewer.user.name.clone();
    let reports = blocking(move || import_upload(&data_dir, &upload)).await?;
    let written = reports.iter().any(|r| r.outcome.is_ok());
    if written {
        state.api.notify_change();
    }
    for report in &reports {
        if let Err(error) = &report.outcome {
            tracing::warn!(user = %user, file = %report.name, error = %error, "dashboard intel import failed");
        }
    }
    tracing::info!(user = %user, files = reports.len(), "intel imported from the dashboard");
    let result = html! {
        section.result aria-live="polite" {
            h2 { "Result" }
            ul {
                @for report in &reports {
                    li { (report_line(report)) }
                }
            }
        }
    };
    Ok(Html(
        page(
            &viewer,
            "Import intel",
            "/intel",
            import_body(&viewer, Some(result)),
        )
        .into_string(),
    ))
}

/// Renders one file's import report. A failure shows the importer's message, which names
/// the file, value and position that failed.
fn report_line(report: &ImportReport) -> Markup {
    match &report.outcome {
        Ok(summary) => html! {
            strong { (report.name) } ": "
            (summary.format.map(|f| f.to_string()).unwrap_or_default()) ", "
            (summary.write.events_added) " events added, "
            (summary.write.events_updated) " updated, "
            (summary.write.attributes) " attributes, "
            (summary.write.hashes_indexed) " hash detections, "
            (summary.write.warninglists) " warninglists, "
            (summary.rejected.len()) " values rejected"
            @for note in &summary.notes { ". " (note) }
        },
        Err(message) => html! { strong { (report.name) } ": failed: " (message) },
    }
}

struct ImportReport {
    name: String,
    outcome: Result<::intel::import::FileSummary, String>,
}

fn import_upload(data_dir: &FsPath, upload: &Upload) -> Result<Vec<ImportReport>, PageError> {
    let mut store = ::intel::Store::open(data_dir).map_err(|e| {
        tracing::error!(error = %error_chain(&e), "failed to open the intel store");
        PageError::Internal
    })?;
    let options = ::intel::import::ImportOptions::default();
    let reports = ::intel::import::import_path(&mut store, &upload.path, &options, &mut |_| {});
    // Messages name the file as uploaded, not the server's temporary folder.
    let folder = format!("{}/", upload.folder.path().display());
    let fallback = upload
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(reports
        .into_iter()
        .map(|report| ImportReport {
            name: report
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| fallback.clone()),
            outcome: report
                .outcome
                .map_err(|e| error_chain(&e).replace(&folder, "")),
        })
        .collect())
}

/// Formats an error's message followed by each of its causes, so that a store failure
/// message includes the reason.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_cleaned() {
        assert_eq!(safe_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(safe_file_name(Some("C:\\x\\iocs list.csv")), "iocslist.csv");
        assert_eq!(safe_file_name(Some("..")), "upload");
        assert_eq!(safe_file_name(None), "upload");
    }
}
