//! The alerts-over-time bar chart, drawn as inline SVG on the server.

use maud::{html, Markup};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 160;
const AXIS: i64 = 20;

/// Draws one bar per `(hour, count)`; each bar has a tooltip, and a table below gives the
/// same numbers to screen readers.
pub fn hourly_bars(series: &[(String, i64)]) -> Markup {
    let max = series.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let total: i64 = series.iter().map(|(_, n)| *n).sum();
    let slot = WIDTH / (series.len().max(1) as i64);
    let plot = HEIGHT - AXIS;
    let summary = format!(
        "Alerts per hour over the last {} hours (UTC): {total} in all, at most {} in one hour",
        series.len(),
        series.iter().map(|(_, n)| *n).max().unwrap_or(0)
    );
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(summary) {
                line x1="0" y1=(plot) x2=(WIDTH) y2=(plot) class="axis" {}
                text x="2" y="10" class="max" { "max " (max) " per hour" }
                @for (index, (hour, count)) in series.iter().enumerate() {
                    @let height = count * (plot - 4) / max;
                    @let x = index as i64 * slot;
                    rect x=(x + 2) y=(plot - height) width=(slot - 4) height=(height) class="bar" {
                        title { (hour) ":00 UTC: " (count) " alerts" }
                    }
                    @if index % 6 == 0 {
                        text x=(x + 2) y=(HEIGHT - 5) class="tick" { (hour.get(11..13).unwrap_or("")) ":00" }
                    }
                }
            }
            figcaption { (summary) }
            details {
                summary { "Numbers" }
                table {
                    thead { tr { th scope="col" { "Hour (UTC)" } th scope="col" { "Alerts" } } }
                    tbody {
                        @for (hour, count) in series {
                            tr { td { (hour) ":00" } td.num { (count) } }
                        }
                    }
                }
            }
        }
    }
}
