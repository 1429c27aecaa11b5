//! MISP's attribute types and categories, read from the `describeTypes.json` that MISP
//! serves at `/attributes/describeTypes.json` (copy from PyMISP, shipped in `data/`).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

const DESCRIBE_TYPES: &str = include_str!("../data/describeTypes.json");

/// MISP's defaults and allowed categories of one attribute type.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub name: String,
    /// Category used when an attribute gives none.
    pub default_category: String,
    /// `to_ids` used when an attribute gives none.
    pub default_to_ids: bool,
    /// Categories in which the type is allowed.
    pub categories: Vec<String>,
}

/// The attribute type table: types, categories and their defaults.
#[derive(Debug)]
pub struct DescribeTypes {
    pub types: HashMap<String, TypeInfo>,
    pub categories: Vec<String>,
}

#[derive(Deserialize)]
struct Raw {
    result: RawResult,
}

#[derive(Deserialize)]
struct RawResult {
    sane_defaults: HashMap<String, RawDefault>,
    categories: Vec<String>,
    category_type_mappings: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RawDefault {
    default_category: String,
    to_ids: u8,
}

static TABLE: LazyLock<DescribeTypes> = LazyLock::new(|| {
    // The file is part of the crate and checked by a test, so a parse failure is a build bug.
    let raw: Raw = serde_json::from_str(DESCRIBE_TYPES).expect("bundled describeTypes.json");
    let mut types: HashMap<String, TypeInfo> = raw
        .result
        .sane_defaults
        .into_iter()
        .map(|(name, d)| {
            let info = TypeInfo {
                name: name.clone(),
                default_category: d.default_category,
                default_to_ids: d.to_ids != 0,
                categories: Vec::new(),
            };
            (name, info)
        })
        .collect();
    for category in &raw.result.categories {
        for name in raw
            .result
            .category_type_mappings
            .get(category)
            .into_iter()
            .flatten()
        {
            if let Some(info) = types.get_mut(name) {
                info.categories.push(category.clone());
            }
        }
    }
    DescribeTypes {
        types,
        categories: raw.result.categories,
    }
});

/// Returns the type table.
pub fn describe_types() -> &'static DescribeTypes {
    &TABLE
}

/// Returns MISP's entry for `type_name`, or `None` for a type MISP does not define.
pub fn type_info(type_name: &str) -> Option<&'static TypeInfo> {
    TABLE.types.get(type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_type() {
        assert_eq!(describe_types().types.len(), 194);
        assert_eq!(describe_types().categories.len(), 16);
    }

    #[test]
    fn hash_defaults() {
        let md5 = type_info("md5").unwrap();
        assert_eq!(md5.default_category, "Payload delivery");
        assert!(md5.default_to_ids);
        assert!(md5.categories.iter().any(|c| c == "Artifacts dropped"));
        assert!(!type_info("pdb").unwrap().default_to_ids);
        assert!(type_info("no-such-type").is_none());
    }
}
