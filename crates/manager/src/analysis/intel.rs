//! The intel crate's detection index behind [`IntelLookup`].

use std::path::Path;
use std::sync::Arc;

use super::{IntelHit, IntelLookup};

/// The detection index loaded from the intel store in the data folder.
pub struct DetectorLookup {
    detector: intel::Detector,
}

impl DetectorLookup {
    /// Opens the intel store in `data_dir` and loads its detection index.
    pub fn load(data_dir: &Path) -> Result<DetectorLookup, intel::Error> {
        let store = intel::Store::open(data_dir)?;
        let detector = intel::Detector::load(&store)?;
        let stats = detector.stats();
        tracing::info!(
            indicators = stats.indicators,
            digests = stats.digests,
            "intel index loaded"
        );
        Ok(DetectorLookup { detector })
    }

    pub fn into_shared(self) -> Arc<dyn IntelLookup> {
        Arc::new(self)
    }
}

impl IntelLookup for DetectorLookup {
    fn lookup_digest(&self, digest: &[u8]) -> Vec<IntelHit> {
        self.detector
            .lookup_digest(digest)
            .into_iter()
            .map(to_hit)
            .collect()
    }

    fn record_sighting(&self, _hit: &IntelHit, _agent_name: &str) -> Result<(), String> {
        // TODO: record a MISP sighting (type 0, source = agent name) once the
        // intel store offers a sighting writer; matches are only alerted today.
        Ok(())
    }
}

fn to_hit(m: intel::Match) -> IntelHit {
    let detection = m.is_detection();
    IntelHit {
        misp: rules::MispMatch {
            event_id: Some(m.event_id),
            event_uuid: Some(m.event_uuid),
            event_info: Some(m.event_info),
            threat_level_id: m.threat_level_id,
            attribute_id: Some(m.attribute_id),
            attribute_uuid: Some(m.attribute_uuid),
            attribute_type: Some(m.r#type),
            category: Some(m.category),
            value: Some(m.value),
            tags: m.tags,
            warninglists: m.warninglists.into_iter().map(|w| w.name).collect(),
            mitre_techniques: Vec::new(),
            error: None,
        },
        detection,
    }
}
