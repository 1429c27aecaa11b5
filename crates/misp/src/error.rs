//! Errors of the MISP parsers: each names the position and the fix.

/// A file-level parse failure: when it occurs, nothing from the file may be stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid JSON at line {line}, column {column}: {message}; {hint}")]
    Json {
        line: usize,
        column: usize,
        message: String,
        hint: &'static str,
    },

    #[error(
        "unrecognised format: {reason}; pass --format with one of {}",
        crate::import::Format::NAMES
    )]
    UnknownFormat { reason: String },

    #[error("not a valid {format}: {message}")]
    Invalid {
        format: &'static str,
        message: String,
    },

    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
}

impl Error {
    /// Converts a serde_json error, shifting its position by the text that preceded `slice`.
    pub(crate) fn json(err: &serde_json::Error, whole: &str, slice: &str) -> Error {
        let offset = (slice.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
        let before = whole.get(..offset).unwrap_or("");
        let lines_before = before.matches('\n').count();
        let column = if err.line() == 1 {
            let last_line = before.rsplit('\n').next().unwrap_or("");
            last_line.chars().count() + err.column()
        } else {
            err.column()
        };
        let message = err.to_string();
        // serde_json appends " at line L column C"; the position is reported separately.
        let message = match message.rfind(" at line ") {
            Some(cut) => message[..cut].to_owned(),
            None => message,
        };
        let hint = match err.classify() {
            serde_json::error::Category::Eof => "the file ends early, so it is probably truncated",
            serde_json::error::Category::Syntax => "fix the JSON syntax at that position",
            _ => "the value there does not have the shape MISP uses",
        };
        Error::Json {
            line: lines_before + err.line(),
            column,
            message,
            hint,
        }
    }
}
