//! HTML pages, rendered with maud (templates checked at compile time, output escaped).

pub mod agents;
pub mod alerts;
mod chart;
mod detail;
pub mod integrations;
pub mod intel;
pub mod layout;
pub mod overview;

/// Returns the current time in Unix seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
