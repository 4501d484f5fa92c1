//! The JSON mapping, case by case, against what protobuf's Python `MessageToDict`
//! (original field names) prints for the same message.

use serde_json::json;

use crate::json::{from_str, to_string, to_value};
use crate::*;

fn check<M: prost::Message + prost::Name + Default + PartialEq>(msg: M, expect: serde_json::Value) {
    let value = to_value(&msg).unwrap();
    assert_eq!(value, expect, "to_value of {}", M::full_name());
    let back: M = from_str(&to_string(&msg).unwrap()).unwrap();
    assert!(
        back == msg,
        "{} did not survive a JSON round trip",
        M::full_name()
    );
}

#[test]
fn defaults_are_left_out() {
    check(Record::default(), json!({}));
    check(
        Record {
            num: 0,
            record_type: Some(record::RecordType::Exit(RunExitRecord::default())),
            ..Default::default()
        },
        json!({"exit": {}}),
    );
}

#[test]
fn original_field_names_and_int64_as_strings() {
    check(
        Record {
            num: 7,
            info: Some(RecordInfo {
                stream_id: "abc".into(),
                ..Default::default()
            }),
            record_type: Some(record::RecordType::History(HistoryRecord {
                item: vec![HistoryItem {
                    key: "_step".into(),
                    value_json: "3".into(),
                    ..Default::default()
                }],
                step: Some(HistoryStep { num: 3 }),
                ..Default::default()
            })),
            ..Default::default()
        },
        json!({
            "num": "7",
            "_info": {"stream_id": "abc"},
            "history": {"item": [{"key": "_step", "value_json": "3"}], "step": {"num": "3"}},
        }),
    );
}

#[test]
fn enums_by_name_and_int32_as_numbers() {
    check(
        OutputRawRecord {
            output_type: output_raw_record::OutputType::Stdout as i32,
            line: "oops\n".into(),
            ..Default::default()
        },
        json!({"output_type": "STDOUT", "line": "oops\n"}),
    );
    check(
        RunExitRecord {
            exit_code: -1,
            runtime: 12,
            ..Default::default()
        },
        json!({"exit_code": -1, "runtime": 12}),
    );
}

#[test]
fn timestamps_are_rfc3339() {
    check(
        RunRecord {
            run_id: "r1".into(),
            start_time: Some(prost_types::Timestamp {
                seconds: 1_795_307_038,
                nanos: 251_134_000,
            }),
            ..Default::default()
        },
        json!({"run_id": "r1", "start_time": "2026-11-22T00:23:58.251134Z"}),
    );
}

#[test]
fn non_finite_floats_are_strings() {
    check(
        StatsItem {
            key: "gpu".into(),
            value_json: "NaN".into(),
        },
        json!({"key": "gpu", "value_json": "NaN"}),
    );
    let sample = SystemMetricSample {
        value: f32::NAN,
        ..Default::default()
    };
    assert_eq!(to_value(&sample).unwrap(), json!({"value": "NaN"}));
    let sample = SystemMetricSample {
        value: f32::NEG_INFINITY,
        ..Default::default()
    };
    assert_eq!(to_value(&sample).unwrap(), json!({"value": "-Infinity"}));
}

#[test]
fn floats_print_their_shortest_form() {
    // A float32 field prints the shortest decimal that reads back as the same float32,
    // as Python's `MessageToDict` does, not the float64 expansion 0.10000000149011612.
    let sample = SystemMetricSample {
        value: 0.1,
        ..Default::default()
    };
    assert_eq!(to_string(&sample).unwrap(), r#"{"value":0.1}"#);
}

#[test]
fn parsing_accepts_camel_case_names() {
    let rec: Record = from_str(r#"{"num": "2", "outputRaw": {"line": "x"}}"#).unwrap();
    assert_eq!(rec.num, 2);
    assert_eq!(rec.kind(), "output_raw");
}

#[test]
fn bad_json_is_an_error_not_a_panic() {
    for bad in [
        "",
        "{",
        "[]",
        r#"{"num": "x"}"#,
        r#"{"nope": 1}"#,
        r#"{"history": 3}"#,
        r#"{} trailing"#,
    ] {
        assert!(from_str::<Record>(bad).is_err(), "{bad:?} parsed");
    }
}
