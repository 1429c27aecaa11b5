//! Evaluation of an event against the rule tree, and the state it keeps between events.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use crate::alert::{Alert, AlertInput};
use crate::event::Event;
use crate::rule::Rule;
use crate::ruleset::Ruleset;
use crate::time::epoch_parts;

/// Events kept per counted rule id or group; older ones are dropped first.
const MAX_HISTORY: usize = 10_000;

/// Previous logs copied into an alert's `previous_output`, as Wazuh's `add_lastevt`.
const MAX_PREVIOUS_LOGS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HistoryKey {
    Sid(u32),
    Group(String),
}

/// An earlier event whose final rule is counted by `if_matched_sid`/`if_matched_group`.
#[derive(Debug, Clone)]
struct PastEvent {
    at_ms: i64,
    agent_id: String,
    /// Level of the frequency rule that already used this event (Wazuh's `matched`).
    used_by_level: u8,
    full_log: String,
}

/// Per-stream state: rule counters, the alert id counter and the event history that
/// `frequency` rules count. Keep one per thread or per manager pipeline.
#[derive(Debug, Clone)]
pub struct State {
    fired: HashMap<u32, u64>,
    alerts: u64,
    history: HashMap<HistoryKey, VecDeque<PastEvent>>,
    manager_name: String,
}

impl State {
    /// Creates empty state; `manager_name` goes into every alert's `manager.name`.
    pub fn new(manager_name: impl Into<String>) -> Self {
        Self {
            fired: HashMap::new(),
            alerts: 0,
            history: HashMap::new(),
            manager_name: manager_name.into(),
        }
    }

    /// Returns how many times a rule has been the final match so far (`rule.firedtimes`).
    pub fn fired_times(&self, rule_id: u32) -> u64 {
        self.fired.get(&rule_id).copied().unwrap_or(0)
    }
}

/// One line of the trace `iocwatch rules test` prints, as wazuh-logtest's phase 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceStep {
    Trying { id: u32, description: String },
    Matched { id: u32 },
    TryingChildren { id: u32 },
}

/// The outcome of [`Ruleset::evaluate`].
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Id of the final rule, the deepest one that matched; `None` if no rule matched.
    pub rule_id: Option<u32>,
    /// Ids from the root to the final rule.
    pub chain: Vec<u32>,
    /// Rules tried and matched, in order; empty unless tracing was asked for.
    pub trace: Vec<TraceStep>,
    /// The alert to write; `None` when no rule matched, the final rule has level 0, or
    /// its level is under the alert level and it does not say `log_alert`.
    pub alert: Option<Alert>,
}

struct Walk<'a> {
    event: &'a Event,
    now_ms: i64,
    trace: Option<Vec<TraceStep>>,
    /// Level of the frequency rule that matched this event, stored with it in history.
    used_by_level: u8,
    previous_logs: Vec<String>,
}

impl Ruleset {
    /// Runs an event through the rules and builds its alert.
    pub fn evaluate(&self, state: &mut State, event: &Event, now: SystemTime) -> Evaluation {
        let (mut evaluation, input) = self.run(state, event, now, false);
        evaluation.alert = input.map(|input| Alert::build(input, event.clone()));
        evaluation
    }

    /// Like [`Ruleset::evaluate`], but moves the event into the alert in place of copying it.
    pub fn evaluate_owned(&self, state: &mut State, event: Event, now: SystemTime) -> Evaluation {
        let (mut evaluation, input) = self.run(state, &event, now, false);
        evaluation.alert = input.map(|input| Alert::build(input, event));
        evaluation
    }

    /// Like [`Ruleset::evaluate`], and records each rule tried in `Evaluation::trace`.
    pub fn evaluate_traced(&self, state: &mut State, event: &Event, now: SystemTime) -> Evaluation {
        let (mut evaluation, input) = self.run(state, event, now, true);
        evaluation.alert = input.map(|input| Alert::build(input, event.clone()));
        evaluation
    }

    /// Walks the rules; returns the evaluation without its alert, and what the alert needs.
    fn run(
        &self,
        state: &mut State,
        event: &Event,
        now: SystemTime,
        traced: bool,
    ) -> (Evaluation, Option<AlertInput<'_>>) {
        let (secs, millis) = epoch_parts(now);
        let mut walk = Walk {
            event,
            now_ms: secs.saturating_mul(1000).saturating_add(i64::from(millis)),
            trace: traced.then(Vec::new),
            used_by_level: 0,
            previous_logs: Vec::new(),
        };

        let mut chain = Vec::new();
        for &root in self.roots_for(event.decoder_name()) {
            if self.check(root, state, &mut walk, &mut chain) {
                break;
            }
        }
        chain.reverse();
        let chain_ids: Vec<u32> = chain.iter().map(|&i| self.rules[i].id).collect();
        let trace = walk.trace.take().unwrap_or_default();
        let Some(&final_index) = chain.last() else {
            let evaluation = Evaluation {
                rule_id: None,
                chain: chain_ids,
                trace,
                alert: None,
            };
            return (evaluation, None);
        };

        let rule = &self.rules[final_index];
        let input = self.conclude(state, rule, &mut walk, now);
        let evaluation = Evaluation {
            rule_id: Some(rule.id),
            chain: chain_ids,
            trace,
            alert: None,
        };
        (evaluation, input)
    }

    /// Tries a rule and then its children; on success pushes the path (deepest first)
    /// onto `chain` and returns true.
    fn check(
        &self,
        index: usize,
        state: &mut State,
        walk: &mut Walk<'_>,
        chain: &mut Vec<usize>,
    ) -> bool {
        let rule = &self.rules[index];
        if let Some(trace) = walk.trace.as_mut() {
            trace.push(TraceStep::Trying {
                id: rule.id,
                description: rule.description.clone(),
            });
        }
        if !rule.matches_event(walk.event) {
            return false;
        }
        if rule.is_stateful() && !self.search_history(rule, state, walk) {
            return false;
        }
        if let Some(trace) = walk.trace.as_mut() {
            trace.push(TraceStep::Matched { id: rule.id });
        }

        let children = &self.children[index];
        if !children.is_empty() {
            if let Some(trace) = walk.trace.as_mut() {
                trace.push(TraceStep::TryingChildren { id: rule.id });
            }
            for &child in children {
                if self.check(child, state, walk, chain) {
                    chain.push(index);
                    return true;
                }
            }
        }
        if rule.noalert {
            return false;
        }
        chain.push(index);
        true
    }

    /// Counts earlier events of the watched rule or group, newest first, as Wazuh's
    /// `Search_LastSids`: same agent, inside `timeframe`, and stopping at an event that
    /// a rule of this level or higher already used.
    fn search_history(&self, rule: &Rule, state: &mut State, walk: &mut Walk<'_>) -> bool {
        let key = match (&rule.if_matched_sid, &rule.if_matched_group) {
            (Some(sid), _) => HistoryKey::Sid(*sid),
            (None, Some(group)) => HistoryKey::Group(group.clone()),
            (None, None) => return true,
        };
        let Some(list) = state.history.get_mut(&key) else {
            return false;
        };
        let window_ms = i64::from(rule.timeframe) * 1000;
        let before_hit = rule.previous_needed() - 1;
        let mut counted = 0usize;
        let mut first_counted = None;
        let mut logs = Vec::new();

        for position in (0..list.len()).rev() {
            let past = &list[position];
            if walk.now_ms - past.at_ms > window_ms {
                return false;
            }
            if past.agent_id != walk.event.agent.id {
                continue;
            }
            if past.used_by_level >= rule.level {
                return false;
            }
            if logs.len() < MAX_PREVIOUS_LOGS {
                logs.push(past.full_log.clone());
            }
            if counted < before_hit {
                counted += 1;
                first_counted.get_or_insert(position);
                continue;
            }
            if let Some(first) = first_counted {
                list[first].used_by_level = rule.level;
            }
            walk.used_by_level = rule.level;
            walk.previous_logs = logs;
            return true;
        }
        false
    }

    /// Updates counters and history for the final rule and returns what its alert needs.
    fn conclude<'r>(
        &self,
        state: &mut State,
        rule: &'r Rule,
        walk: &mut Walk<'_>,
        now: SystemTime,
    ) -> Option<AlertInput<'r>> {
        if rule.level == 0 {
            return None;
        }
        let fired = state.fired.entry(rule.id).or_insert(0);
        *fired += 1;
        let fired_times = *fired;
        self.remember(state, rule, walk);

        let logged = rule.options.log.unwrap_or(rule.level >= self.alert_level);
        if !logged {
            return None;
        }
        state.alerts += 1;
        let mail = rule
            .options
            .email
            .unwrap_or(rule.level >= self.email_alert_level);
        let previous_logs = std::mem::take(&mut walk.previous_logs);
        Some(AlertInput {
            rule,
            time: now,
            sequence: state.alerts,
            fired_times,
            mail,
            previous_logs,
            manager_name: state.manager_name.clone(),
        })
    }

    /// Stores the event for rules that count the final rule's id or one of its groups.
    fn remember(&self, state: &mut State, rule: &Rule, walk: &Walk<'_>) {
        let mut targets: Vec<(HistoryKey, u32)> = Vec::new();
        if let Some(&timeframe) = self.watched_sids.get(&rule.id) {
            targets.push((HistoryKey::Sid(rule.id), timeframe));
        } else {
            for group in &rule.groups {
                if let Some(&timeframe) = self.watched_groups.get(group) {
                    targets.push((HistoryKey::Group(group.clone()), timeframe));
                }
            }
        }
        for (key, timeframe) in targets {
            let list = state.history.entry(key).or_default();
            let oldest = walk.now_ms - i64::from(timeframe) * 1000;
            while list.front().is_some_and(|p| p.at_ms < oldest) || list.len() >= MAX_HISTORY {
                list.pop_front();
            }
            list.push_back(PastEvent {
                at_ms: walk.now_ms,
                agent_id: walk.event.agent.id.clone(),
                used_by_level: walk.used_by_level,
                full_log: walk.event.full_log().to_string(),
            });
        }
    }
}
