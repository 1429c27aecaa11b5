//! MISP core format model, attribute type validation and importers.
