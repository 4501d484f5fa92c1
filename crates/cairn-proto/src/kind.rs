//! The kind of a [`Record`]: which member of its `record_type` oneof is set.
//!
//! Kinds are named after the oneof's field names in the protocol (`history`, `output_raw`,
//! `exit`, ...), the same names the JSON mapping uses as keys, so counts printed by
//! `cairn dump --kinds` line up with the JSON a reader sees.

use crate::Record;
use crate::record::RecordType;

impl Record {
    /// The protocol name of the record's kind, or `"empty"` when no kind is set.
    pub fn kind(&self) -> &'static str {
        let Some(kind) = &self.record_type else {
            return "empty";
        };
        match kind {
            RecordType::History(_) => "history",
            RecordType::Summary(_) => "summary",
            RecordType::Output(_) => "output",
            RecordType::Config(_) => "config",
            RecordType::Files(_) => "files",
            RecordType::Stats(_) => "stats",
            RecordType::Artifact(_) => "artifact",
            RecordType::Tbrecord(_) => "tbrecord",
            RecordType::Alert(_) => "alert",
            RecordType::Telemetry(_) => "telemetry",
            RecordType::Metric(_) => "metric",
            RecordType::OutputRaw(_) => "output_raw",
            RecordType::Run(_) => "run",
            RecordType::Exit(_) => "exit",
            RecordType::Final(_) => "final",
            RecordType::Header(_) => "header",
            RecordType::Footer(_) => "footer",
            RecordType::Preempting(_) => "preempting",
            RecordType::NoopLinkArtifact(_) => "noop_link_artifact",
            RecordType::UseArtifact(_) => "use_artifact",
            RecordType::Environment(_) => "environment",
            RecordType::OutputLogger(_) => "output_logger",
            RecordType::Request(_) => "request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    /// Every kind name is the JSON key the canonical mapping uses for that member.
    #[test]
    fn kind_names_match_json_keys() {
        let oneof = json::descriptor("wandb_internal.Record")
            .unwrap()
            .oneofs()
            .find(|o| o.name() == "record_type")
            .unwrap();
        for field in oneof.fields() {
            let mut msg = prost_reflect::DynamicMessage::new(
                json::descriptor("wandb_internal.Record").unwrap(),
            );
            msg.set_field(&field, field.default_value());
            let record: Record = msg.transcode_to().unwrap();
            assert_eq!(record.kind(), field.name());
        }
        assert_eq!(Record::default().kind(), "empty");
    }
}
