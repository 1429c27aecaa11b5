//! `iocwatch intel` end to end: the real binary on real fixture files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../misp/tests/fixtures")
        .join(rel)
}

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_iocwatch"))
            .env("IOCWATCH_DATA_DIR", self.data_dir())
            .env_remove("IOCWATCH_LOG")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn import(&self, rels: &[&str]) -> Output {
        let paths: Vec<String> = rels
            .iter()
            .map(|r| fixture(r).display().to_string())
            .collect();
        let mut args = vec!["intel", "import", "--no-progress"];
        args.extend(paths.iter().map(String::as_str));
        self.run(&args)
    }

    fn lookup(&self, values: &[&str]) -> (i32, Vec<serde_json::Value>) {
        let mut args = vec!["intel", "lookup"];
        args.extend(values);
        let out = self.run(&args);
        let lines = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (out.status.code().unwrap(), lines)
    }

    fn stats(&self) -> serde_json::Value {
        let out = self.run(&["intel", "stats", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn import_then_lookup_filename_sha256() {
    let cli = Cli::new();
    let out = cli.import(&["misp/long_event.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("1 events added"), "{summary}");
    assert!(
        summary.contains("370 attributes, 219 hashes indexed"),
        "{summary}"
    );

    let (code, lines) =
        cli.lookup(&["7A200C4DF99887991C638FE625D07A4A3FC2BDC887112437752B3DF5C8DA79B6"]);
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 1);
    let m = &lines[0];
    assert_eq!(m["type"], "filename|sha256");
    assert_eq!(m["attribute_uuid"], "5715f3b4-c4f0-4b6b-8661-494f950d210f");
    assert_eq!(m["event_uuid"], "57153590-f73c-49fa-be4b-4737950d210f");
    assert_eq!(m["category"], "Payload delivery");
    assert_eq!(m["threat_level_id"], "2");
    assert_eq!(m["suppressed"], false);
    assert_eq!(m["warninglists"], serde_json::json!([]));
    assert!(m["event_id"].is_string());
    assert!(m["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "tlp:white"));
}

#[test]
fn lookup_exit_codes() {
    let cli = Cli::new();
    assert!(cli
        .import(&["misp/57c4445b-c548-4654-af0b-4be3950d210f.json"])
        .status
        .success());
    assert_eq!(cli.lookup(&["0749bae92ca336a02c83d126e04ec628"]).0, 0);
    assert_eq!(cli.lookup(&["ffffffffffffffffffffffffffffffff"]).0, 1);
    // A to_ids false attribute (a link) is not in the index at all.
    assert_eq!(
        cli.lookup(&["http://www.xylibox.com/2011/06/have-fun-with-trojan-ransomwin32xorist.html"])
            .0,
        1
    );

    let file = cli.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .args(["--data-dir", file.to_str().unwrap(), "intel", "lookup", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not-a-dir"), "{}", stderr(&out));
}

#[test]
fn object_hashes_found() {
    let cli = Cli::new();
    assert!(cli.import(&["misp/mainly_objects_1.json"]).status.success());
    let (code, lines) =
        cli.lookup(&["9b23bfc35b18ed80104c496b2aa722b3e56ff9ceb9dae60d1aff7230321c1d12"]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["object_name"], "file");
    assert_eq!(lines[0]["object_relation"], "sha256");
}

#[test]
fn empty_file_md5_suppressed() {
    let cli = Cli::new();
    let list = cli.dir.path().join("list.md5");
    std::fs::write(
        &list,
        "d41d8cd98f00b204e9800998ecf8427e\n0749bae92ca336a02c83d126e04ec628\n",
    )
    .unwrap();
    let out = cli.run(&["intel", "import", list.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, lines) = cli.lookup(&["D41D8CD98F00B204E9800998ECF8427E"]);
    assert_eq!(code, 1, "a suppressed match is not a detection");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["suppressed"], true);
    let lists: Vec<&str> = lines[0]["warninglists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(
        lists.contains(&"List of known hashes for empty files"),
        "{lists:?}"
    );
    assert_eq!(lines[0]["warninglists"][0]["action"], "suppress");
}

#[test]
fn hash_list_rejections_reported() {
    let cli = Cli::new();
    let out = cli.import(&["feeds/eset-modiloader-samples.sha1", "feeds/hash-iocs.txt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("12 attributes, 12 hashes indexed, 1 rejected"),
        "{text}"
    );
    assert!(
        text.contains("rejected line 13: `f0295f2e46cebffaf7892a5b33ba54122781c20bs`"),
        "{text}"
    );
    assert!(
        text.contains("3053 attributes, 3053 hashes indexed, 0 rejected, 171 duplicates"),
        "{text}"
    );
    assert_eq!(cli.stats()["detections"], 12 + 3053);
}

#[test]
fn bad_files_fail_and_store_nothing() {
    let cli = Cli::new();
    let truncated = cli.dir.path().join("truncated.json");
    let text = std::fs::read_to_string(fixture("misp/long_event.json")).unwrap();
    std::fs::write(&truncated, &text[..text.len() - 100]).unwrap();
    let out = cli.run(&["intel", "import", truncated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("truncated.json"), "{err}");
    assert!(err.contains("invalid JSON at line"), "{err}");
    assert_eq!(cli.stats()["events"], 0);

    let out = cli.import(&["misp-feed/malvuln/feed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a valid MISP feed manifest"),
        "{}",
        stderr(&out)
    );

    let out = cli.run(&["intel", "import", "--format", "nonsense", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown format `nonsense`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cli.stats()["attributes"], 0);
}

#[test]
fn stix_and_feed_imports() {
    let cli = Cli::new();
    let out = cli.import(&[
        "stix/issue-271.json",
        "misp-feed/redblue232-threat-feed-publisher",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("note: columns are event_uuid,md5"),
        "{}",
        stdout(&out)
    );
    let (code, lines) = cli.lookup(&["EBE2F8DF39B4A94FB408580A728D351F"]);
    assert_eq!(code, 0);
    assert_eq!(lines[0]["object_name"], "file");
    assert_eq!(cli.lookup(&["104.28.235.59"]).0, 0);

    let again = cli.import(&["stix/issue-271.json"]);
    assert!(
        stdout(&again).contains("0 events added, 0 updated, 1 unchanged"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn exports() {
    let cli = Cli::new();
    assert!(cli
        .import(&["misp/57c4445b-c548-4654-af0b-4be3950d210f.json"])
        .status
        .success());
    let text = cli.run(&["intel", "export", "--format", "text"]);
    let values: Vec<String> = stdout(&text).lines().map(str::to_owned).collect();
    // 5 of the 9 attributes have to_ids.
    assert_eq!(values.len(), 5);
    assert!(values.contains(&"77b0c41b7d340b8a3d903f21347bbf06aa766b5b".to_string()));

    let json = cli.run(&["intel", "export", "--format", "misp-json"]);
    let exported: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let original: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("misp/57c4445b-c548-4654-af0b-4be3950d210f.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(exported["response"][0], original);

    let csv = cli.run(&["intel", "export", "--format", "csv", "--include-non-ids"]);
    // A text attribute spans lines inside quotes, so count rows by their leading uuid.
    let text = stdout(&csv);
    let is_row = |l: &&str| l.len() > 37 && l.as_bytes()[8] == b'-' && l.as_bytes()[36] == b',';
    assert!(text.starts_with("uuid,event_id,category,type,value"));
    assert_eq!(text.lines().filter(is_row).count(), 9);
}

#[test]
fn stats_lists_default_warninglists() {
    let cli = Cli::new();
    let stats = cli.stats();
    let lists = stats["warninglists"].as_array().unwrap();
    assert_eq!(lists.len(), 3);
    let out = cli.run(&["intel", "stats"]);
    assert!(stdout(&out).contains("annotate"), "{}", stdout(&out));
}

#[test]
fn csv_column_and_stdin_lookup() {
    let cli = Cli::new();
    let csv = cli.dir.path().join("hashes.csv");
    std::fs::write(
        &csv,
        "# exported list\nfirst_seen,file_name,digest\n\
         2024-01-01,a.exe,0749BAE92CA336A02C83D126E04EC628\n\
         2024-01-02,b.exe,77b0c41b7d340b8a3d903f21347bbf06aa766b5b\n",
    )
    .unwrap();
    let out = cli.run(&[
        "intel",
        "import",
        "--csv-column",
        "digest",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(csv): 1 events added"),
        "{}",
        stdout(&out)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_iocwatch"))
        .env("IOCWATCH_DATA_DIR", cli.data_dir())
        .args(["intel", "lookup", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"77B0C41B7D340B8A3D903F21347BBF06AA766B5B\nnot-known\n")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("\"type\":\"sha1\""), "{}", lines[0]);
}
