//! `iocwatch intel` subcommands: import, pull, sync, push-sightings, lookup, stats and
//! export.

mod pull;
mod remote;
mod sightings;
mod sync;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use intel::export::{export, ExportFilter, ExportFormat};
use intel::import::{import_path, FileReport, ImportOptions, Progress, DEFAULT_MAX_FILE_BYTES};
use intel::{Action, Detector, Store};
use misp::import::ColumnSpec;
use misp::Format;

use super::Global;

/// Rejected values listed after an import unless `--all-rejected` is given.
const REJECTED_SHOWN: usize = 20;

#[derive(Subcommand, Debug)]
pub enum IntelCommand {
    /// Import MISP events and feeds, CSV or freetext hash lists, STIX 2 bundles and warninglists
    Import(ImportArgs),
    /// Pull events from a MISP-compatible server, only those changed since the last pull;
    /// exit 0 on success, 2 on error
    Pull(pull::PullArgs),
    /// Sync whole events with a MISP-compatible server as MISP's server pull and push do
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// Push sightings of pulled attributes back to the server they came from; exit 0 on
    /// success, 2 when the push was interrupted
    PushSightings(sightings::PushSightingsArgs),
    /// Print one JSON line per indicator matching each VALUE; exit 0 when a detection matches,
    /// 1 when none does, 2 on error
    Lookup(LookupArgs),
    /// Show what the intel store contains
    Stats(StatsArgs),
    /// Write the store as MISP JSON, MISP CSV or text (one value per line)
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Files or folders to import; a folder with manifest.json is read as a MISP feed
    #[arg(required = true)]
    paths: Vec<PathBuf>,

    /// Format instead of detecting it: misp-json, misp-feed, csv, freetext, stix2, warninglist
    #[arg(long)]
    format: Option<Format>,

    /// CSV column holding the values: a number counted from 1, or a header name
    #[arg(long, value_name = "N|NAME")]
    csv_column: Option<ColumnSpec>,

    /// CSV field separator (default: `,`, `;` or tab, whichever the first line uses)
    #[arg(long, value_name = "CHAR")]
    csv_delimiter: Option<char>,

    /// Action of imported warninglists: suppress or annotate (default: annotate for EICAR
    /// lists, suppress for others)
    #[arg(long, value_name = "ACTION")]
    warninglist_action: Option<Action>,

    /// Store nothing from a file in which any value is rejected
    #[arg(long)]
    strict: bool,

    /// Largest file to read, in bytes
    #[arg(long, default_value_t = DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,

    /// List every rejected value instead of the first 20
    #[arg(long)]
    all_rejected: bool,

    /// Do not draw a progress bar
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Values to look up: hashes in any case, `filename|hash`, ssdeep, domains, ...;
    /// `-` reads one value per line from standard input
    #[arg(required = true)]
    values: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print the statistics as one JSON object
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Output format: misp-json, csv or text
    #[arg(long, default_value = "misp-json")]
    format: ExportFormat,

    /// File to write instead of standard output
    #[arg(long, short)]
    output: Option<PathBuf>,

    /// Export only attributes of this type (csv and text); repeat for several types
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,

    /// Include attributes without `to_ids` (csv and text export only detections by default)
    #[arg(long)]
    include_non_ids: bool,
}

pub fn run(command: IntelCommand, global: &Global) -> anyhow::Result<ExitCode> {
    match command {
        IntelCommand::Import(args) => run_import(args, global),
        IntelCommand::Pull(args) => pull::run(args, global),
        IntelCommand::Sync(command) => sync::run(command, global),
        IntelCommand::PushSightings(args) => sightings::run(args, global),
        IntelCommand::Lookup(args) => run_lookup(args, global),
        IntelCommand::Stats(args) => run_stats(args, global),
        IntelCommand::Export(args) => run_export(args, global),
    }
}

fn open_store(global: &Global) -> anyhow::Result<Store> {
    Store::open(&global.data_dir).with_context(|| {
        format!(
            "failed to open the intel store in `{}`",
            global.data_dir.display()
        )
    })
}

fn run_import(args: ImportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    disable_transparent_huge_pages();
    let mut store = open_store(global)?;
    let delimiter = match args.csv_delimiter {
        Some(c) if c.is_ascii() => Some(c as u8),
        Some(c) => anyhow::bail!("--csv-delimiter `{c}` is not an ASCII character"),
        None => None,
    };
    let options = ImportOptions {
        format: args.format,
        csv: misp::CsvOptions {
            column: args.csv_column.clone(),
            delimiter,
        },
        warninglist_action: args.warninglist_action,
        strict: args.strict,
        max_file_bytes: args.max_file_bytes,
    };

    let bar = progress_bar(args.no_progress);
    let mut reports = Vec::new();
    for path in &args.paths {
        if !path.exists() {
            let message = format!("`{}` does not exist; check the path", path.display());
            reports.push(FileReport {
                path: path.clone(),
                outcome: Err(intel::Error::Invalid {
                    path: path.clone(),
                    message,
                }),
            });
            continue;
        }
        reports.extend(import_path(&mut store, path, &options, &mut |p| {
            show_progress(&bar, p)
        }));
    }
    bar.finish_and_clear();

    let failed = print_import_summary(&reports, args.all_rejected)?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Turns off transparent huge pages for this process. Importing a 1,000,000-attribute
/// event peaks at about 1.6 GB of small objects, and with huge pages each first touch of
/// the allocator's sparse regions makes the kernel zero a whole 2 MiB page. On the 2-core
/// test machine that cost more than the parsing (see BENCHMARKS.md, "Intel import").
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes a flag of
        // this process; it touches no memory of ours.
        let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay on");
        }
    }
}

fn progress_bar(disabled: bool) -> ProgressBar {
    if disabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} files {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn show_progress(bar: &ProgressBar, progress: Progress) {
    match progress {
        Progress::Files(n) => bar.inc_length(n as u64),
        Progress::Start(path, bytes) => {
            bar.set_message(format!("{} ({:.1} MB)", path.display(), bytes as f64 / 1e6))
        }
        Progress::Done(_) => bar.inc(1),
    }
}

/// Prints one line per file and the totals; returns true when any file failed.
fn print_import_summary(reports: &[FileReport], all_rejected: bool) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    let mut totals = intel::store::WriteSummary::default();
    let (mut failed, mut rejected, mut duplicates) = (0, 0, 0);
    for report in reports {
        let summary = match &report.outcome {
            Ok(summary) => summary,
            Err(e) => {
                failed += 1;
                eprintln!("iocwatch: error: {}", error_chain(e));
                continue;
            }
        };
        let w = &summary.write;
        let format = summary.format.map_or(String::new(), |f| format!(" ({f})"));
        writeln!(
            out,
            "{}{format}: {} events added, {} updated, {} unchanged; {} attributes, {} hashes indexed, \
             {} rejected, {} duplicates, {} warninglists",
            report.path.display(),
            w.events_added,
            w.events_updated,
            w.events_unchanged,
            w.attributes,
            w.hashes_indexed,
            summary.rejected.len(),
            summary.duplicates,
            w.warninglists
        )?;
        for note in &summary.notes {
            writeln!(out, "  note: {note}")?;
        }
        let shown = if all_rejected {
            summary.rejected.len()
        } else {
            REJECTED_SHOWN
        };
        for r in summary.rejected.iter().take(shown) {
            writeln!(
                out,
                "  rejected {}: `{}`: {}",
                r.location, r.value, r.reason
            )?;
        }
        if summary.rejected.len() > shown {
            writeln!(
                out,
                "  ... {} more rejected (use --all-rejected)",
                summary.rejected.len() - shown
            )?;
        }
        add_totals(&mut totals, w);
        rejected += summary.rejected.len();
        duplicates += summary.duplicates;
    }
    writeln!(
        out,
        "total: {} files ({failed} failed), {} events added, {} updated, {} unchanged; {} attributes, \
         {} hashes indexed, {rejected} rejected, {duplicates} duplicates",
        reports.len(),
        totals.events_added,
        totals.events_updated,
        totals.events_unchanged,
        totals.attributes,
        totals.hashes_indexed
    )?;
    Ok(failed > 0)
}

fn add_totals(totals: &mut intel::store::WriteSummary, w: &intel::store::WriteSummary) {
    totals.events_added += w.events_added;
    totals.events_updated += w.events_updated;
    totals.events_unchanged += w.events_unchanged;
    totals.attributes += w.attributes;
    totals.hashes_indexed += w.hashes_indexed;
    totals.warninglists += w.warninglists;
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn run_lookup(args: LookupArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let values = read_values(&args.values)?;
    let store = open_store(global)?;
    let detector = Detector::load(&store).context("failed to load the detection index")?;
    drop(store);

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut detected = false;
    let mut write = || -> anyhow::Result<()> {
        for value in &values {
            for m in detector.lookup_value(value) {
                detected |= m.is_detection();
                serde_json::to_writer(&mut out, &m)?;
                out.write_all(b"\n")?;
            }
        }
        out.flush()?;
        Ok(())
    };
    ignore_broken_pipe(write())?;
    Ok(if detected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Expands `-` into the lines of standard input.
fn read_values(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut values = Vec::new();
    for arg in args {
        if arg != "-" {
            values.push(arg.clone());
            continue;
        }
        for line in std::io::stdin().lock().lines() {
            let line = line.context("failed to read values from standard input")?;
            if !line.trim().is_empty() {
                values.push(line.trim().to_owned());
            }
        }
    }
    Ok(values)
}

fn run_stats(args: StatsArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let stats = store.stats().context("failed to read the intel store")?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &stats)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }

    writeln!(
        out,
        "store:        {} ({} bytes)",
        store.path().display(),
        stats.database_bytes
    )?;
    writeln!(out, "events:       {}", stats.events)?;
    writeln!(out, "objects:      {}", stats.objects)?;
    writeln!(out, "attributes:   {}", stats.attributes)?;
    writeln!(
        out,
        "detections:   {} (to_ids, not deleted)",
        stats.detections
    )?;
    writeln!(out, "imports:      {}", stats.imports)?;
    writeln!(
        out,
        "correlation:  {} values, {} attribute rows, {} over the limit of {}",
        stats.correlation.values,
        stats.correlation.members,
        stats.correlation.over_correlating,
        stats.correlation_limit
    )?;

    writeln!(out, "hash attributes by type (all / detections):")?;
    for t in &stats.hash_types {
        writeln!(
            out,
            "  {:<20} {:>10} {:>10}",
            t.r#type, t.attributes, t.detections
        )?;
    }

    writeln!(out, "warninglists:")?;
    for w in &stats.warninglists {
        writeln!(
            out,
            "  {:<9} {:>7} entries  {} ({})",
            w.action.as_str(),
            w.entries,
            w.name,
            w.r#type
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_export(args: ExportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = open_store(global)?;
    let filter = ExportFilter {
        types: args.types,
        include_non_ids: args.include_non_ids,
    };
    let result = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("failed to create `{}`", path.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            export(&store, args.format, &filter, &mut writer)
                .map_err(anyhow::Error::from)
                .and_then(|_| writer.flush().map_err(anyhow::Error::from))
                .with_context(|| format!("failed to write `{}`", path.display()))
        }
        None => {
            let mut writer = std::io::BufWriter::new(std::io::stdout().lock());
            export(&store, args.format, &filter, &mut writer)
                .map_err(anyhow::Error::from)
                .and_then(|_| writer.flush().map_err(anyhow::Error::from))
        }
    };
    ignore_broken_pipe(result)?;
    Ok(ExitCode::SUCCESS)
}

/// Treats a closed standard output (`iocwatch intel export | head`) as success.
fn ignore_broken_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}
