//! The error type of the crate: every rule problem names its file, line and element.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Position of a problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name as given to the loader, or `<default>/NAME` for a built-in file.
    pub file: String,
    /// 1-based line of the element (or of the character) that is wrong.
    pub line: u32,
    /// Element name without brackets, such as `rule` or `field`.
    pub element: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: line {}: element `<{}>`",
            self.file, self.line, self.element
        )
    }
}

/// Errors raised while loading rules or reading events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule file or folder could not be read.
    #[error("failed to read rule path `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A rule file is malformed or a rule in it is invalid.
    #[error("invalid rule file {location}: {message}")]
    Rule { location: Location, message: String },

    /// An event document lacks a field or has one of the wrong type.
    #[error("invalid file event: {0}")]
    Event(String),
}

impl Error {
    /// Builds an [`Error::Rule`] from its parts.
    pub(crate) fn rule(file: &str, line: u32, element: &str, message: impl Into<String>) -> Self {
        Error::Rule {
            location: Location {
                file: file.to_string(),
                line,
                element: element.to_string(),
            },
            message: message.into(),
        }
    }

    /// Returns the rule file location, when the error concerns one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Rule { location, .. } => Some(location),
            _ => None,
        }
    }
}
