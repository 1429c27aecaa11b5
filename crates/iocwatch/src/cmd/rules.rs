//! `iocwatch rules test`: runs file events from stdin through the rules, like wazuh-logtest.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, Subcommand};
use rules::{Alert, Evaluation, Event, Ruleset, State, TraceStep};
use serde_json::Value;

use super::Global;

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Read file events as JSON on stdin and print the rules tried, the rule that
    /// matched and the alert, like wazuh-logtest
    ///
    /// Each input is a JSON object (one per line, or pretty-printed one after another):
    /// a Wazuh alert's `syscheck` object with `agent` and `location` beside it, and
    /// optionally the intel enrichment as `misp`, for example
    /// {"syscheck":{"path":"/tmp/x","event":"added","mode":"realtime"},"agent":{"id":"001","name":"web1"},"location":"syscheck"}
    Test(TestArgs),
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Folder of user rule files (`*.xml`, loaded after the default rules); repeat for more
    #[arg(long = "rules-dir", value_name = "DIR")]
    rules_dirs: Vec<PathBuf>,

    /// Load only the rules of --rules-dir, not the default rules
    #[arg(long)]
    no_default_rules: bool,

    /// Name written to each alert's `manager.name`
    #[arg(long, default_value = "iocwatch")]
    manager_name: String,
}

pub fn run(command: RulesCommand, _global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::Test(args) => test(args),
    }
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let ruleset =
        Ruleset::load(!args.no_default_rules, &args.rules_dirs).context("failed to load rules")?;
    let mut state = State::new(args.manager_name);

    let stdin = io::stdin();
    let reader = stdin.lock();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;

    let documents = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
    for (index, document) in documents.enumerate() {
        let number = index + 1;
        let document = document.with_context(|| {
            format!("failed to read event {number} from stdin: it must be JSON")
        })?;
        match Event::from_json(&document) {
            Ok(event) => {
                let outcome = ruleset.evaluate_traced(&mut state, &event, SystemTime::now());
                print_outcome(&mut out, &ruleset, &event, &outcome)?;
            }
            Err(err) => {
                failed = true;
                writeln!(out, "**Event {number} rejected: {err}\n")?;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_outcome(
    out: &mut impl Write,
    ruleset: &Ruleset,
    event: &Event,
    outcome: &Evaluation,
) -> io::Result<()> {
    writeln!(out, "**Phase 2: Completed decoding.")?;
    writeln!(out, "\tname: '{}'", event.decoder_name())?;
    for name in [
        "file",
        "mode",
        "size",
        "md5",
        "sha1",
        "sha256",
        "changed_fields",
        "misp.event_id",
        "misp.error",
    ] {
        if let Some(value) = event.field(name) {
            writeln!(out, "\t{name}: '{value}'")?;
        }
    }
    writeln!(out)?;

    for step in &outcome.trace {
        match step {
            TraceStep::Trying { id, description } => {
                writeln!(out, "    Trying rule: {id} - {description}")?
            }
            TraceStep::Matched { id } => writeln!(out, "       *Rule {id} matched")?,
            TraceStep::TryingChildren { .. } => writeln!(out, "       *Trying child rules")?,
        }
    }
    writeln!(out)?;

    let Some(rule) = outcome.rule_id.and_then(|id| ruleset.rule(id)) else {
        writeln!(
            out,
            "**Phase 3: Completed filtering (rules).\n\tNo rule matched.\n"
        )?;
        return Ok(());
    };
    writeln!(out, "**Phase 3: Completed filtering (rules).")?;
    let chain: Vec<String> = outcome.chain.iter().map(u32::to_string).collect();
    writeln!(out, "\tchain: '{}'", chain.join(" -> "))?;
    writeln!(out, "\tid: '{}'", rule.id)?;
    writeln!(out, "\tlevel: '{}'", rule.level)?;
    match &outcome.alert {
        Some(alert) => print_alert(out, alert),
        None => {
            writeln!(out, "\tdescription: '{}'", rule.render_description(event))?;
            writeln!(
                out,
                "**No alert: level {} is below the alert level or the rule has no_log.\n",
                rule.level
            )
        }
    }
}

fn print_alert(out: &mut impl Write, alert: &Alert) -> io::Result<()> {
    writeln!(out, "\tdescription: '{}'", alert.rule.description)?;
    writeln!(out, "\tgroups: '{}'", alert.rule.groups.join(", "))?;
    if let Some(fired) = alert.rule.fired_times {
        writeln!(out, "\tfiredtimes: '{fired}'")?;
    }
    writeln!(out, "\tmail: '{}'", alert.rule.mail)?;
    writeln!(out, "**Alert to be generated.")?;
    writeln!(out, "{}\n", alert.to_json_line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_lists_trace_and_alert() {
        let ruleset = Ruleset::load(true, &[]).unwrap();
        let mut state = State::new("m");
        let doc = serde_json::json!({
            "syscheck": {"path": "/tmp/x", "event": "added", "mode": "realtime"},
            "agent": {"id": "001", "name": "web1"},
            "location": "syscheck"
        });
        let event = Event::from_json(&doc).unwrap();
        let outcome = ruleset.evaluate_traced(&mut state, &event, SystemTime::now());
        let mut buf = Vec::new();
        print_outcome(&mut buf, &ruleset, &event, &outcome).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("Trying rule: 111001"), "{text}");
        assert!(text.contains("*Rule 111001 matched"), "{text}");
        assert!(text.contains("**Alert to be generated."), "{text}");
        assert!(text.contains("\"id\":\"111001\""), "{text}");
    }
}
