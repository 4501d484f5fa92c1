//! Real W&B logs decode to exactly what W&B's own classes decode, and rewriting their
//! records with cairn's writer gives back the same bytes.

use cairn_store::{LogWriter, SyncPolicy};

use crate::{fixture_logs, read_bytes};

fn is_crashed(path: &std::path::Path) -> bool {
    path.to_string_lossy().contains("/crashed/")
}

#[test]
fn fixtures_decode_to_their_records_jsonl() {
    for log in fixture_logs() {
        let bytes = std::fs::read(&log).unwrap();
        let (records, damage) = read_bytes(&bytes);
        if is_crashed(&log) {
            assert_eq!(damage.len(), 1, "{}: {damage:?}", log.display());
            assert!(damage[0].is_torn_tail());
        } else {
            assert!(damage.is_empty(), "{}: {damage:?}", log.display());
        }
        let expected_path = log.with_extension("records.jsonl");
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        let expected: Vec<serde_json::Value> = expected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), expected.len(), "{}", log.display());
        for (i, (record, want)) in records.iter().zip(&expected).enumerate() {
            let got = cairn_proto::json::payload_to_value("wandb_internal.Record", &record.payload)
                .unwrap();
            assert_eq!(&got, want, "{} record {i}", log.display());
        }
    }
}

#[test]
fn rewriting_fixture_records_reproduces_the_file() {
    for log in fixture_logs() {
        let original = std::fs::read(&log).unwrap();
        let (records, damage) = read_bytes(&original);
        let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
        for r in &records {
            let offset = writer.push(&r.payload).unwrap();
            assert_eq!(offset, r.start, "{}", log.display());
        }
        let rewritten = writer.finish().unwrap();
        if is_crashed(&log) {
            // W&B was killed mid-record: the file goes on with the torn record's first
            // piece, which cairn cannot rewrite. Everything before it is identical.
            let torn_at = damage[0].offset as usize;
            assert_eq!(rewritten.len(), torn_at, "{}", log.display());
            assert!(original.starts_with(&rewritten), "{}", log.display());
        } else {
            assert!(
                rewritten == original,
                "{} differs when rewritten",
                log.display()
            );
        }
    }
}

#[test]
fn fixtures_cover_multi_block_records_and_empty_first_chunks() {
    // The fixtures must exercise the framing's corners, or the tests above prove little.
    let mut spanning = 0;
    for log in fixture_logs() {
        let (records, _) = read_bytes(&std::fs::read(&log).unwrap());
        spanning += records
            .iter()
            .filter(|r| r.start / 32768 != (r.end - 1) / 32768)
            .count();
    }
    assert!(spanning >= 3, "only {spanning} records span blocks");
}

#[test]
fn fixture_records_survive_a_json_round_trip() {
    // JSON -> Record -> JSON gives the same value. (The re-encoded bytes may order fields
    // differently from Go's encoder; byte-exact files come from copying payloads.)
    let mut total = 0;
    for log in fixture_logs() {
        let (records, _) = read_bytes(&std::fs::read(&log).unwrap());
        for (i, record) in records.iter().enumerate() {
            let value =
                cairn_proto::json::payload_to_value("wandb_internal.Record", &record.payload)
                    .unwrap();
            let payload =
                cairn_proto::json::json_to_payload("wandb_internal.Record", &value.to_string())
                    .unwrap();
            let again =
                cairn_proto::json::payload_to_value("wandb_internal.Record", &payload).unwrap();
            assert_eq!(again, value, "{} record {i}", log.display());
            let typed: cairn_proto::Record = cairn_proto::json::from_str(&value.to_string())
                .unwrap_or_else(|e| panic!("{} record {i}: {e}", log.display()));
            assert_eq!(cairn_proto::json::to_value(&typed).unwrap(), value);
            total += 1;
        }
    }
    assert!(total > 2000);
}
