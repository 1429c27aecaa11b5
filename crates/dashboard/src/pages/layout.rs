//! The page shell (head, navigation, user menu), the login page and small shared pieces:
//! level badges, pagers and empty states.

use maud::{html, Markup, DOCTYPE};

use crate::login::Viewer;

/// The navigation entries: `(path, label)`.
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/agents", "Agents"),
    ("/intel", "Intel"),
    ("/integrations", "Integration log"),
];

fn head(title: &str, csrf: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if let Some(token) = csrf {
                meta name="csrf-token" content=(token);
            }
            title { (title) " · iocwatch" }
            link rel="stylesheet" href="/static/app.css";
            script src="/static/app.js" defer {}
        }
    }
}

/// Wraps a page body in the shell; `active` is the path of the current navigation entry.
pub fn page(viewer: &Viewer, title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(&viewer.session.csrf)))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "iocwatch" }
                    nav aria-label="Main" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    a href=(path) aria-current=[(*path == active).then_some("page")] {
                                        (label)
                                    }
                                }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        span { (viewer.user.name) " (" (viewer.user.role.as_str()) ")" }
                        input type="hidden" name="csrf" value=(viewer.session.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// Renders the login page; `csrf` is also set in the login cookie.
pub fn login(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", None))
            body {
                main id="main" .login {
                    h1 { "iocwatch: log in" }
                    @if let Some(error) = error {
                        p.error role="alert" { (error) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        p {
                            label for="name" { "User name" }
                            input id="name" name="name" type="text" autocomplete="username" required autofocus;
                        }
                        p {
                            label for="key" { "API key" }
                            input id="key" name="key" type="password" autocomplete="current-password" required;
                        }
                        p { button type="submit" { "Log in" } }
                    }
                    p.hint {
                        "Use your API user name and key. "
                        code { "iocwatch users add NAME --role read-only" }
                        " creates a user and prints a key."
                    }
                }
            }
        }
    }
}

/// Returns the severity word of a rule level, as the manager's syslog output maps it.
pub fn level_label(level: i64) -> &'static str {
    match level {
        12.. => "critical",
        7..=11 => "warning",
        3..=6 => "notice",
        _ => "info",
    }
}

/// Renders a level as number and word, so that it reads without colour.
pub fn level_badge(level: i64) -> Markup {
    let label = level_label(level);
    html! {
        span class=(format!("level level-{label}")) { (level) " " (label) }
    }
}

/// Previous and next links; `query` is the filter query string without `page`.
pub fn pager(base: &str, query: &str, page: u32, has_next: bool) -> Markup {
    let link = |p: u32| {
        if query.is_empty() {
            format!("{base}?page={p}")
        } else {
            format!("{base}?{query}&page={p}")
        }
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 {
                a href=(link(page - 1)) rel="prev" { "← Previous" }
            }
            span { "Page " (page) }
            @if has_next {
                a href=(link(page + 1)) rel="next" { "Next →" }
            }
        }
    }
}

/// Renders the paragraph shown in place of an empty table.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

/// Builds `base?name=value&...` with the values URL-encoded.
pub fn query_link(base: &str, pairs: &[(&str, &str)]) -> String {
    match serde_urlencoded::to_string(pairs) {
        Ok(query) if !query.is_empty() => format!("{base}?{query}"),
        _ => base.to_owned(),
    }
}
