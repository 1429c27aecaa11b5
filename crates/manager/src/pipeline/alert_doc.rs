//! An alert on its way to the database and alerts.json: built by the rules engine as a
//! typed value, or as JSON by the manager itself, and serialised once when it is stored.

use std::borrow::Cow;

use serde_json::Value;

/// One alert document in Wazuh 4.x form; the pipeline sets its `id` when it stores it.
#[derive(Clone, Debug)]
pub enum AlertDoc {
    /// An alert of the rules engine, written without an intermediate `Value`.
    Rules(Box<rules::Alert>),
    /// A document built as JSON, such as an agent disconnection or an active-response
    /// result.
    Json(Value),
}

impl From<rules::Alert> for AlertDoc {
    fn from(alert: rules::Alert) -> AlertDoc {
        AlertDoc::Rules(Box::new(alert))
    }
}

impl From<Value> for AlertDoc {
    fn from(alert: Value) -> AlertDoc {
        AlertDoc::Json(alert)
    }
}

impl AlertDoc {
    /// `rule.level`, 0 when missing.
    pub fn level(&self) -> u64 {
        match self {
            AlertDoc::Rules(alert) => u64::from(alert.rule.level),
            AlertDoc::Json(alert) => field(alert, "rule", "level")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        }
    }

    /// `rule.id` as text, whether the document contains a string (Wazuh) or a number.
    pub fn rule_id(&self) -> Option<String> {
        match self {
            AlertDoc::Rules(alert) => Some(alert.rule.id.to_string()),
            AlertDoc::Json(alert) => rule_id(alert),
        }
    }

    /// `agent.id`.
    pub fn agent_id(&self) -> Option<&str> {
        match self {
            AlertDoc::Rules(alert) => Some(&alert.agent.id),
            AlertDoc::Json(alert) => field(alert, "agent", "id").and_then(Value::as_str),
        }
    }

    /// Returns the `timestamp` field, empty when missing.
    pub fn timestamp(&self) -> Cow<'_, str> {
        match self {
            AlertDoc::Rules(alert) => Cow::Owned(alert.timestamp()),
            AlertDoc::Json(alert) => Cow::Borrowed(
                alert
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
        }
    }

    /// `syscheck.path` of an alert about a file that still exists: `None` for a deleted
    /// file and for alerts about no file.
    pub fn present_file(&self) -> Option<&str> {
        match self {
            AlertDoc::Rules(alert) => {
                let deleted = alert.file.kind == Some(rules::FileEventKind::Deleted);
                (!deleted && !alert.file.path.is_empty()).then_some(alert.file.path.as_str())
            }
            AlertDoc::Json(alert) => {
                if field(alert, "syscheck", "event").and_then(Value::as_str) == Some("deleted") {
                    return None;
                }
                field(alert, "syscheck", "path").and_then(Value::as_str)
            }
        }
    }

    /// Returns the alert's `id`, once the pipeline has set it.
    pub fn id(&self) -> Option<&str> {
        match self {
            AlertDoc::Rules(alert) => Some(&alert.id),
            AlertDoc::Json(alert) => alert.get("id").and_then(Value::as_str),
        }
    }

    /// Sets the `id` field.
    pub fn set_id(&mut self, id: String) {
        match self {
            AlertDoc::Rules(alert) => alert.id = id,
            AlertDoc::Json(alert) => {
                if let Some(object) = alert.as_object_mut() {
                    object.insert("id".into(), Value::String(id));
                }
            }
        }
    }

    /// Serialises the alert as one `alerts.json` line, without the trailing newline.
    pub fn to_line(&self) -> String {
        match self {
            AlertDoc::Rules(alert) => alert.to_json_line(),
            // Serialising a `Value` cannot fail: its map keys are strings.
            AlertDoc::Json(alert) => serde_json::to_string(alert).unwrap_or_default(),
        }
    }

    /// Builds the alert as a JSON value.
    pub fn to_json(&self) -> Value {
        match self {
            AlertDoc::Rules(alert) => alert.to_json(),
            AlertDoc::Json(alert) => alert.clone(),
        }
    }
}

/// Returns `alert[outer][inner]`. It is what `Value::pointer` does for two plain keys,
/// without allocating a string for each key.
fn field<'a>(alert: &'a Value, outer: &str, inner: &str) -> Option<&'a Value> {
    alert.get(outer)?.get(inner)
}

/// Returns `rule.id` as text, whether the document contains a string (Wazuh) or a number.
fn rule_id(alert: &Value) -> Option<String> {
    match field(alert, "rule", "id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::SystemTime;

    fn rules_alert(kind: rules::FileEventKind) -> AlertDoc {
        let ruleset = rules::Ruleset::load(true, &[]).unwrap();
        let mut state = rules::State::new("manager-1");
        let file = rules::FileEvent {
            path: "/tmp/dropper.sh".into(),
            kind: Some(kind),
            ..Default::default()
        };
        let agent = rules::Agent {
            id: "001".into(),
            name: "web1".into(),
            ip: None,
        };
        let event = rules::Event::new(file, agent, "syscheck");
        let evaluation = ruleset.evaluate(&mut state, &event, SystemTime::now());
        evaluation.alert.expect("an alert").into()
    }

    #[test]
    fn typed_and_json_forms_agree() {
        let mut typed = rules_alert(rules::FileEventKind::Added);
        typed.set_id("1.7".into());
        let json = AlertDoc::Json(serde_json::from_str(&typed.to_line()).unwrap());

        for doc in [&typed, &json] {
            assert_eq!(doc.level(), 5);
            assert_eq!(doc.rule_id().as_deref(), Some("111001"));
            assert_eq!(doc.agent_id(), Some("001"));
            assert_eq!(doc.id(), Some("1.7"));
            assert_eq!(doc.present_file(), Some("/tmp/dropper.sh"));
        }
        assert_eq!(typed.timestamp(), json.timestamp());
        assert_eq!(typed.to_line(), json.to_line());
        assert_eq!(typed.to_json(), json.to_json());
    }

    #[test]
    fn deleted_file_is_not_present() {
        let typed = rules_alert(rules::FileEventKind::Deleted);
        let json = AlertDoc::Json(typed.to_json());
        assert_eq!(typed.present_file(), None);
        assert_eq!(json.present_file(), None);
    }

    #[test]
    fn json_rule_id_may_be_a_number() {
        let doc = AlertDoc::Json(json!({"rule": {"id": 504, "level": 3}}));
        assert_eq!(doc.rule_id().as_deref(), Some("504"));
        assert_eq!(doc.level(), 3);
        assert_eq!(doc.agent_id(), None);
        assert_eq!(doc.timestamp(), "");
    }
}
