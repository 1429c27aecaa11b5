//! MISP core format model, attribute type validation and importers.
//!
//! Pure logic with no storage or network: [`model`] reads and writes MISP JSON,
//! [`validate`] checks and normalises values per attribute type, [`fields`] checks the
//! shape of uuids, dates and first/last seen times, and [`import`] turns
//! files (MISP JSON, feeds, CSV, freetext, STIX 2, warninglists) into validated events.

mod error;
pub mod fields;
pub mod hash;
pub mod import;
mod lenient;
pub mod model;
mod model_de;
pub mod types;
pub mod validate;

pub use error::Error;
pub use hash::HashAlgo;
pub use import::{parse_bytes, CsvOptions, FileMeta, Format, Parsed, ParsedEvent, Rejected};
pub use model::{Attribute, Event, Galaxy, Object, Org, Orgc, Sighting, Tag};
