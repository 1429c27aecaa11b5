//! Serde helpers for MISP's loose JSON: numbers arrive as strings or numbers, flags as
//! booleans, `"0"`/`"1"` or integers, and missing values as `null`.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::ser::Serializer;
use std::fmt;

/// Scalar seen where MISP writes a number, a string or a flag.
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        i64::try_from(v)
            .map(Scalar::Int)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// Reads a string that may be written as a number; `null` becomes `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Null => None,
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Int(i) => Some(i.to_string()),
        Scalar::Float(f) => Some(f.to_string()),
        Scalar::Str(s) => Some(s),
    })
}

/// Reads a string that may be written as a number; `null` becomes the empty string.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_string(d).map(Option::unwrap_or_default)
}

/// Reads an integer written as a number or a decimal string; `null` and `""` become `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match scalar(d)? {
        Scalar::Null => Ok(None),
        Scalar::Int(i) => Ok(Some(i)),
        Scalar::Float(f) if f.fract() == 0.0 => Ok(Some(f as i64)),
        Scalar::Str(s) if s.trim().is_empty() => Ok(None),
        Scalar::Str(s) => s.trim().parse().map(Some).map_err(|_| {
            de::Error::invalid_value(Unexpected::Str(&s), &"an integer or a decimal string")
        }),
        Scalar::Bool(b) => Err(de::Error::invalid_type(Unexpected::Bool(b), &"an integer")),
        Scalar::Float(f) => Err(de::Error::invalid_value(Unexpected::Float(f), &"an integer")),
    }
}

/// Reads a flag written as `true`/`false`, `0`/`1` or `"0"`/`"1"`; `null` becomes `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match scalar(d)? {
        Scalar::Null => Ok(None),
        Scalar::Bool(b) => Ok(Some(b)),
        Scalar::Int(i) => Ok(Some(i != 0)),
        Scalar::Float(f) => Ok(Some(f != 0.0)),
        Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" | "" => Ok(Some(false)),
            _ => Err(de::Error::invalid_value(Unexpected::Str(&s), &"a boolean flag")),
        },
    }
}

/// Reads a flag like [`opt_bool`], with `null` or absence meaning `false`.
pub fn bool_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d).map(Option::unwrap_or_default)
}

/// Writes an integer as a decimal string, the way MISP exports numbers.
pub fn ser_opt_i64_str<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(i) => s.collect_str(i),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "super::opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "super::bool_flag")]
        flag: bool,
        #[serde(default, deserialize_with = "super::opt_string")]
        id: Option<String>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_as_strings() {
        assert_eq!(probe(r#"{"n": "1472541011"}"#).n, Some(1472541011));
        assert_eq!(probe(r#"{"n": 3}"#).n, Some(3));
        assert_eq!(probe(r#"{"n": null}"#).n, None);
        assert_eq!(probe(r#"{"n": ""}"#).n, None);
        assert_eq!(probe(r#"{"id": 12}"#).id.as_deref(), Some("12"));
    }

    #[test]
    fn flags_in_every_spelling() {
        assert!(probe(r#"{"flag": true}"#).flag);
        assert!(probe(r#"{"flag": "1"}"#).flag);
        assert!(probe(r#"{"flag": 1}"#).flag);
        assert!(!probe(r#"{"flag": "0"}"#).flag);
        assert!(!probe(r#"{"flag": null}"#).flag);
        assert!(!probe("{}").flag);
    }

    #[test]
    fn non_numeric_string_is_an_error() {
        assert!(serde_json::from_str::<Probe>(r#"{"n": "soon"}"#).is_err());
    }
}
