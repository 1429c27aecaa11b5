//! Intel context in alerts: a file whose hash is in an event with an ATT&CK galaxy raises
//! an alert whose `rule.mitre` names the technique and whose `data.misp` lists the event's
//! tags and galaxy clusters.

use std::sync::Arc;
use std::time::SystemTime;

use manager::analysis::intel::DetectorLookup;
use manager::analysis::Engine;
use manager::{AgentRef, Analysis, Analyze};
use serde_json::{json, Value};

const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const TECHNIQUE_TAG: &str = "misp-galaxy:mitre-attack-pattern=\"PowerShell - T1059.001\"";
const ACTOR_TAG: &str = "misp-galaxy:threat-actor=\"APT28\"";

fn import_event(data_dir: &std::path::Path) {
    let event = json!({"Event": {
        "uuid": "5e0f1c2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f",
        "info": "PowerShell dropper",
        "date": "2024-03-01",
        "timestamp": "1709251200",
        "Tag": [{"name": "tlp:green"}, {"name": TECHNIQUE_TAG}, {"name": ACTOR_TAG}],
        "Galaxy": [{
            "name": "Attack Pattern",
            "type": "mitre-attack-pattern",
            "GalaxyCluster": [{
                "type": "mitre-attack-pattern",
                "value": "PowerShell - T1059.001",
                "tag_name": TECHNIQUE_TAG,
                "meta": {"external_id": ["T1059.001"]}
            }]
        }],
        "Attribute": [{"type": "sha256", "category": "Payload delivery", "value": SHA256,
            "to_ids": true}]
    }});
    let file = data_dir.join("event.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    let mut store = intel::Store::open(data_dir).unwrap();
    let options = intel::import::ImportOptions::default();
    let reports = intel::import::import_path(&mut store, &file, &options, &mut |_| {});
    assert!(reports.iter().all(|r| r.outcome.is_ok()), "import failed");
}

#[test]
fn galaxy_context_reaches_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    import_event(dir.path());
    let lookup = DetectorLookup::load(dir.path()).unwrap().into_shared();
    let ruleset = Arc::new(rules::Ruleset::load(true, &[]).unwrap());
    let mut engine = Engine::new(ruleset, Some(lookup), "test-manager");

    let agent = AgentRef {
        id: "001".into(),
        name: "web-01".into(),
        ip: "192.0.2.10".into(),
    };
    let event = json!({"type": "file", "path": "/tmp/drop.ps1", "event": "added",
        "sha256_after": SHA256});
    let mut out = Analysis::default();
    engine.analyze(&agent, &event, SystemTime::now(), &mut out);

    let alert: Value = out.alerts.first().expect("an intel alert").to_json();
    let mitre_ids = &alert["rule"]["mitre"]["id"];
    assert!(
        mitre_ids.as_array().unwrap().contains(&json!("T1059.001")),
        "rule.mitre.id: {mitre_ids}"
    );
    let misp = &alert["data"]["misp"];
    assert_eq!(misp["tags"], json!(["tlp:green", TECHNIQUE_TAG, ACTOR_TAG]));
    let galaxies = misp["galaxies"].as_array().expect("data.misp.galaxies");
    let values: Vec<&str> = galaxies
        .iter()
        .filter_map(|g| g["value"].as_str())
        .collect();
    assert_eq!(values, ["PowerShell - T1059.001", "APT28"]);
    assert_eq!(galaxies[1]["type"], "threat-actor");
    assert_eq!(galaxies[1]["tag_name"], ACTOR_TAG);
    assert_eq!(misp["mitre_techniques"], json!(["T1059.001"]));
}
