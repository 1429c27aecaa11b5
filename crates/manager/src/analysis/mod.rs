//! The real analyser: decodes the syscheck event, looks its hashes up in
//! the intel index in-process, adds the `misp` enrichment and runs the rules.

mod active_response;
pub mod intel;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::Value;

use crate::outputs::integration_log::LookupRecord;
use crate::pipeline::{AgentRef, AlertDoc, Analysis, Analyze, AGENT_KEYS};

/// One intel match, reduced to what the rules and the log need.
#[derive(Clone, Debug)]
pub struct IntelHit {
    pub misp: rules::MispMatch,
    /// False when a warninglist suppresses the value.
    pub detection: bool,
}

/// The in-process intel index as the analyser uses it.
pub trait IntelLookup: Send + Sync {
    /// Looks up one digest given as raw bytes.
    fn lookup_digest(&self, digest: &[u8]) -> Vec<IntelHit>;

    /// Records that `agent_name` saw the matched value (a MISP sighting of type 0).
    fn record_sighting(&self, hit: &IntelHit, agent_name: &str) -> Result<(), String>;
}

/// Rules plus intel, with the rules' state; runs on the pipeline's analysis thread.
pub struct Engine {
    ruleset: Arc<rules::Ruleset>,
    state: rules::State,
    intel: Option<Arc<dyn IntelLookup>>,
    manager_name: String,
    invalid_events: u64,
}

/// Hash fields looked up, strongest first: the first detection wins.
const HASH_FIELDS: [(&str, &str, usize); 3] = [
    ("sha256", "sha256", 32),
    ("sha1", "sha1", 20),
    ("md5", "md5", 16),
];

impl Engine {
    pub fn new(
        ruleset: Arc<rules::Ruleset>,
        intel: Option<Arc<dyn IntelLookup>>,
        manager_name: &str,
    ) -> Engine {
        Engine {
            ruleset,
            state: rules::State::new(manager_name),
            intel,
            manager_name: manager_name.to_string(),
            invalid_events: 0,
        }
    }

    fn lookup(
        &self,
        agent: &AgentRef,
        file: &rules::FileEvent,
        out: &mut Analysis,
    ) -> Option<rules::MispMatch> {
        let intel = self.intel.as_ref()?;
        let mut best: Option<IntelHit> = None;
        let mut error = None;
        for (name, field, bytes) in HASH_FIELDS {
            let Some(hex_value) = hash_value(file, field) else {
                continue;
            };
            let started = Instant::now();
            let mut buffer = [0; 32];
            let digest = match decode_digest(hex_value, bytes, &mut buffer) {
                Ok(digest) => digest,
                Err(message) => {
                    out.lookups.push(record(
                        name,
                        hex_value,
                        "error",
                        &[],
                        started,
                        Some(message.clone()),
                    ));
                    error.get_or_insert(message);
                    continue;
                }
            };
            let hits = intel.lookup_digest(digest);
            let result = match (hits.iter().any(|h| h.detection), hits.is_empty()) {
                (true, _) => "match",
                (false, false) => "suppressed",
                (false, true) => "no_match",
            };
            out.lookups
                .push(record(name, hex_value, result, &hits, started, None));
            let better = hits.iter().find(|h| h.detection).or(hits.first());
            if let Some(hit) = better {
                if best.as_ref().is_none_or(|b| !b.detection && hit.detection) {
                    best = Some(hit.clone());
                }
            }
        }

        match best {
            Some(hit) => {
                if hit.detection {
                    if let Err(err) = intel.record_sighting(&hit, &agent.name) {
                        tracing::warn!(error = %err, agent_id = %agent.id, "failed to record a sighting");
                    }
                }
                Some(hit.misp)
            }
            None => error.map(|message| rules::MispMatch {
                error: Some(message),
                ..Default::default()
            }),
        }
    }
}

impl Analyze for Engine {
    fn analyze(&mut self, agent: &AgentRef, event: &Value, now: SystemTime, out: &mut Analysis) {
        if let Some(result) = event.get("active_response") {
            let alert = active_response::alert(agent, result, &self.manager_name, now);
            out.alerts.extend(alert.map(AlertDoc::from));
            return;
        }
        if event
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "file")
        {
            // Agent notices (scan summaries and the like) carry no file to judge.
            return;
        }
        let file = match rules::FileEvent::from_syscheck_json_skipping(event, &AGENT_KEYS) {
            Ok(file) => file,
            Err(err) => {
                self.invalid_events += 1;
                if self.invalid_events.is_power_of_two() {
                    tracing::warn!(agent_id = %agent.id, error = %err, invalid_total = self.invalid_events, "invalid file event skipped");
                }
                return;
            }
        };

        let misp = self.lookup(agent, &file, out);
        let rules_agent = rules::Agent {
            id: agent.id.clone(),
            name: agent.name.clone(),
            ip: Some(agent.ip.clone()),
        };
        let mut rules_event = rules::Event::new(file, rules_agent, "syscheck");
        if let Some(misp) = misp {
            rules_event = rules_event.with_misp(misp);
        }
        let evaluation = self
            .ruleset
            .evaluate_owned(&mut self.state, rules_event, now);
        if let Some(alert) = evaluation.alert {
            out.alerts.push(alert.into());
        }
    }
}

/// Returns the new value of a hash, or the old one for a deleted file.
fn hash_value<'a>(file: &'a rules::FileEvent, field: &str) -> Option<&'a str> {
    let pick = |attrs: &'a rules::FileAttributes| match field {
        "sha256" => attrs.sha256.as_deref(),
        "sha1" => attrs.sha1.as_deref(),
        _ => attrs.md5.as_deref(),
    };
    pick(&file.after)
        .or_else(|| pick(&file.before))
        .filter(|v| !v.is_empty())
}

/// Decodes a hex digest of `bytes` bytes (at most 32) into `buffer`, returning the digest.
fn decode_digest<'a>(
    hex_value: &str,
    bytes: usize,
    buffer: &'a mut [u8; 32],
) -> Result<&'a [u8], String> {
    let text = hex_value.trim();
    let not_hex = || format!("`{hex_value}` is not a hex digest");
    let digest = buffer.get_mut(..bytes).ok_or_else(not_hex)?;
    if text.len() != bytes * 2 {
        // Tells a valid digest of another length from text that is not hex at all.
        let decoded = hex::decode(text).map_err(|_| not_hex())?;
        return Err(format!(
            "`{hex_value}` has {} bytes, expected {bytes}",
            decoded.len()
        ));
    }
    hex::decode_to_slice(text, digest).map_err(|_| not_hex())?;
    Ok(digest)
}

fn record(
    algorithm: &'static str,
    hash: &str,
    result: &'static str,
    hits: &[IntelHit],
    started: Instant,
    error: Option<String>,
) -> LookupRecord {
    LookupRecord {
        algorithm,
        hash: hash.to_string(),
        result,
        matches: hits
            .iter()
            .map(|h| {
                (
                    h.misp.event_id.clone().unwrap_or_default(),
                    h.misp.attribute_id.clone().unwrap_or_default(),
                )
            })
            .collect(),
        latency_us: started.elapsed().as_secs_f64() * 1e6,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::decode_digest;

    #[test]
    fn digest_decodes_into_buffer() {
        let mut buffer = [0; 32];
        let digest = decode_digest(" 00ff10 ", 3, &mut buffer).unwrap();
        assert_eq!(digest, [0x00, 0xff, 0x10]);
    }

    #[test]
    fn digest_errors_name_the_problem() {
        let mut buffer = [0; 32];
        let short = decode_digest("00ff", 16, &mut buffer).unwrap_err();
        assert_eq!(short, "`00ff` has 2 bytes, expected 16");
        let not_hex = decode_digest("zz", 1, &mut buffer).unwrap_err();
        assert_eq!(not_hex, "`zz` is not a hex digest");
        let odd = decode_digest("abc", 2, &mut buffer).unwrap_err();
        assert_eq!(odd, "`abc` is not a hex digest");
    }
}
