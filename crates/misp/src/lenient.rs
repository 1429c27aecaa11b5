//! Serde helpers for MISP's loose JSON: numbers arrive as strings or numbers, flags as
//! booleans, `"0"`/`"1"` or integers, and missing values as `null`.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::ser::Serializer;
use std::fmt;

/// Reads a string that may be written as a number or flag; `null` becomes `None`.
struct OptStringVisitor;

impl<'de> Visitor<'de> for OptStringVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
}

/// Reads an integer written as a number or a decimal string, without allocating.
struct OptI64Visitor;

impl<'de> Visitor<'de> for OptI64Visitor {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer, a decimal string or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(Some(v as i64))
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse()
            .map(Some)
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// Reads a flag written as `true`/`false`, `0`/`1` or `"0"`/`"1"`.
struct OptBoolVisitor;

impl<'de> Visitor<'de> for OptBoolVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean flag (true, false, 0, 1) or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v != 0.0))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim() {
            "1" => Ok(Some(true)),
            "0" | "" => Ok(Some(false)),
            t if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
            t if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

/// Reads a string that may be written as a number; `null` becomes `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OptStringVisitor)
}

/// Reads a string that may be written as a number; `null` becomes the empty string.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    opt_string(d).map(Option::unwrap_or_default)
}

/// Reads an integer written as a number or a decimal string; `null` and `""` become `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(OptI64Visitor)
}

/// Reads a flag written as `true`/`false`, `0`/`1` or `"0"`/`"1"`; `null` becomes `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(OptBoolVisitor)
}

/// Reads a flag like [`opt_bool`], with `null` or absence meaning `false`.
pub fn bool_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d).map(Option::unwrap_or_default)
}

/// Newtypes that apply the readers above where a type, not a function, is needed.
pub(crate) struct OptString(pub Option<String>);
pub(crate) struct OptI64(pub Option<i64>);
pub(crate) struct OptBool(pub Option<bool>);

impl<'de> serde::Deserialize<'de> for OptString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_string(d).map(OptString)
    }
}

impl<'de> serde::Deserialize<'de> for OptI64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_i64(d).map(OptI64)
    }
}

impl<'de> serde::Deserialize<'de> for OptBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_bool(d).map(OptBool)
    }
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
