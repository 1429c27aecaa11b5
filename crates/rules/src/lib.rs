//! Wazuh 4.x XML rules engine for file events, and alert documents in Wazuh 4.x form.
//!
//! # Use
//!
//! ```
//! use std::time::SystemTime;
//! use rules::{Agent, Event, FileEvent, FileEventKind, Ruleset, State};
//!
//! // Default rules plus any user folders (each `*.xml` file, sorted by name).
//! let ruleset = Ruleset::load(true, &[]).expect("default rules load");
//! let mut state = State::new("manager-1");
//!
//! let file = FileEvent {
//!     path: "/tmp/dropper.sh".into(),
//!     kind: Some(FileEventKind::Added),
//!     mode: Some("realtime".into()),
//!     ..Default::default()
//! };
//! let agent = Agent { id: "001".into(), name: "web1".into(), ip: Some("10.0.0.5".into()) };
//! let event = Event::new(file, agent, "syscheck");
//!
//! let outcome = ruleset.evaluate(&mut state, &event, SystemTime::now());
//! assert_eq!(outcome.rule_id, Some(111001));
//! let line = outcome.alert.expect("level 5 is alerted").to_json_line();
//! assert!(line.contains("\"syscheck_new_entry\""));
//! ```
//!
//! # Pieces
//!
//! * [`Ruleset`]: loaded rules. [`Ruleset::load`] reads the built-in rules
//!   ([`ruleset::DEFAULT_FILES`], ids 111001-111099) and user rule folders; a user rule
//!   with an existing id needs `overwrite="yes"`. A broken file is rejected with an
//!   [`Error::Rule`] that names the file, line and element. The ruleset is immutable
//!   and can be shared between threads.
//! * [`State`]: what evaluation remembers between events (`firedtimes`, the alert id
//!   counter, the history `frequency` rules count). One per pipeline or thread.
//! * [`Event`]: the input. Build it with [`Event::new`] from a [`FileEvent`] (the
//!   `syscheck` object of a Wazuh alert: [`FileEvent::from_syscheck_json`]), an
//!   [`Agent`] and the location, then [`Event::with_misp`] to add intel enrichment
//!   ([`MispMatch`]). [`Event::from_json`] reads the document `iocwatch rules test`
//!   takes: `{"syscheck": {...}, "agent": {...}, "location": "syscheck", "misp": {...}}`.
//! * [`Ruleset::evaluate`] returns an [`Evaluation`]: the matched rule chain and the
//!   [`Alert`], whose [`Alert::to_json`] is one `alerts.json` line in Wazuh 4.x form.
//!   [`Ruleset::evaluate_traced`] also lists every rule tried, like wazuh-logtest.
//!
//! # Fields rules can test
//!
//! `<field name=...>` and `$(name)` in descriptions use Wazuh's syscheck decoder names:
//! `file`, `mode`, `size`, `perm`, `uid`, `gid`, `md5`, `sha1`, `sha256`, `uname`,
//! `gname`, `mtime`, `inode` (new values; `*_after` is accepted too), the same with
//! `_before` for old values, `changed_fields`, `hard_links`, `symbolic_path`, `tag`,
//! `changed_content`, `event_type`, `entry_type`, the who-data fields (`user_name`,
//! `process_name`, ...), and the intel fields `misp.event_id`, `misp.event_uuid`,
//! `misp.event_info`, `misp.threat_level_id`, `misp.attribute_id`,
//! `misp.attribute_uuid`, `misp.type`, `misp.category`, `misp.value`, `misp.tags`,
//! `misp.warninglists`, `misp.mitre_techniques` and `misp.error`.
//!
//! ATT&CK techniques the event carries in [`MispMatch::mitre_techniques`] are added to
//! the alert's `rule.mitre` after the rule's own `<mitre>` ids.

mod alert;
mod engine;
mod error;
mod event;
mod event_json;
mod mitre;
mod parse;
mod pattern;
mod rule;
pub mod ruleset;
mod time;
#[doc(hidden)]
pub mod xml;

pub use alert::{Alert, AlertRule};
pub use engine::{Evaluation, State, TraceStep};
pub use error::{Error, Location};
pub use event::{
    Agent, Event, FileAttributes, FileEvent, FileEventKind, MispGalaxy, MispMatch, DECODER_NAMES,
};
pub use mitre::MitreTechnique;
pub use pattern::{MatchAborted, Pattern, PatternType};
pub use rule::{aborted_pcre2_matches, FieldCheck, Rule, RuleOptions, RuleSource};
pub use ruleset::Ruleset;

/// Parses one rule file without linking it to others; used by tests and fuzzing.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<Rule>, Error> {
    parse::parse_file(file, text)
}
