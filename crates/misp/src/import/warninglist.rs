//! MISP warninglists (`list.json` from misp-warninglists): known false positives or
//! benign values, each list with a match type and the attribute types it applies to.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::lenient;
use crate::Error;

/// Match types of warninglist entries (MISP's `type` field).
pub const LIST_TYPES: &[&str] = &["string", "substring", "hostname", "cidr", "regex"];

/// One warninglist as MISP publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warninglist {
    pub name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub description: String,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub version: Option<i64>,
    /// Match type: one of [`LIST_TYPES`].
    #[serde(rename = "type", default = "default_list_type")]
    pub list_type: String,
    #[serde(rename = "list")]
    pub entries: Vec<String>,
    /// Attribute types the list applies to; empty means every type.
    #[serde(default)]
    pub matching_attributes: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_list_type() -> String {
    "string".into()
}

/// Parses and checks a warninglist `list.json`.
pub fn parse_warninglist(text: &str) -> Result<Warninglist, Error> {
    let list: Warninglist = serde_json::from_str(text).map_err(|e| Error::json(&e, text, text))?;
    let invalid = |message: String| Error::Invalid {
        format: "MISP warninglist",
        message,
    };
    if list.name.trim().is_empty() {
        return Err(invalid(
            "the `name` field is empty; every warninglist needs a name".into(),
        ));
    }
    if !LIST_TYPES.contains(&list.list_type.as_str()) {
        return Err(invalid(format!(
            "unknown list type `{}`; expected one of {}",
            list.list_type,
            LIST_TYPES.join(", ")
        )));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_shape() {
        let text = r#"{"description":"d","list":["3::","d41d8cd98f00b204e9800998ecf8427e"],
            "matching_attributes":["md5","ssdeep"],"name":"empty","type":"string","version":3}"#;
        let list = parse_warninglist(text).unwrap();
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.version, Some(3));
    }

    #[test]
    fn unknown_type_rejected() {
        let err = parse_warninglist(r#"{"name":"x","list":[],"type":"glob"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown list type `glob`"),
            "{err}"
        );
    }
}
