//! The config tree against W&B's core: each case applies config records and checks the
//! config that results (the cases of W&B's `runconfig_test.go`, and what the SDK sends for
//! charts, image class labels and `config.persist()`).

use cairn_proto::{ConfigItem, ConfigRecord};
use serde_json::json;

use super::*;

/// A config item: `"key"` as its key, `"a.b.c"` as a nested key (as the SDK sends both).
fn item(path: &str, value_json: &str) -> ConfigItem {
    if path.contains('.') {
        ConfigItem {
            nested_key: path.split('.').map(str::to_owned).collect(),
            value_json: value_json.to_owned(),
            ..Default::default()
        }
    } else {
        ConfigItem {
            key: path.to_owned(),
            value_json: value_json.to_owned(),
            ..Default::default()
        }
    }
}

fn update(items: &[(&str, &str)]) -> ConfigRecord {
    ConfigRecord {
        update: items.iter().map(|(p, v)| item(p, v)).collect(),
        ..Default::default()
    }
}

fn remove(paths: &[&str]) -> ConfigRecord {
    ConfigRecord {
        remove: paths.iter().map(|p| item(p, "")).collect(),
        ..Default::default()
    }
}

/// Applies `records` in order to an empty config and compares the result with `expect`.
#[track_caller]
fn check(records: &[ConfigRecord], expect: serde_json::Value) {
    let mut config = Config::default();
    for record in records {
        apply_config(&mut config, record);
    }
    let got: serde_json::Value =
        serde_json::from_str(&Value::Map(config.into_iter().collect()).to_json()).unwrap();
    assert_eq!(got, expect);
}

#[test]
fn top_level_keys_are_set_and_replaced() {
    check(
        &[
            update(&[("lr", "0.1"), ("name", "\"a\"")]),
            update(&[("lr", "0.2")]),
        ],
        json!({"lr": 0.2, "name": "a"}),
    );
}

#[test]
fn two_charts_under_wandb_visualize_both_survive() {
    // `wandb.plot.line` then `wandb.plot.bar`: each one nested key, no `key`.
    let chart =
        |id: &str| format!(r#"{{"panel_type":"Vega2","panel_config":{{"panelDefId":"{id}"}}}}"#);
    check(
        &[
            update(&[("_wandb", r#"{"cli_version":"0.31.0"}"#)]),
            update(&[("_wandb.visualize.line", &chart("wandb/line/v0"))]),
            update(&[("_wandb.visualize.bar", &chart("wandb/bar/v0"))]),
        ],
        json!({"_wandb": {
            "cli_version": "0.31.0",
            "visualize": {
                "line": {"panel_type": "Vega2", "panel_config": {"panelDefId": "wandb/line/v0"}},
                "bar": {"panel_type": "Vega2", "panel_config": {"panelDefId": "wandb/bar/v0"}},
            },
        }}),
    );
}

#[test]
fn a_wandb_update_merges_into_wandb() {
    // `config.persist()` after an image with masks sends the whole `_wandb` the SDK knows,
    // which has the class labels but not the charts: the charts stay.
    check(
        &[
            update(&[("_wandb.visualize.roc", r#"{"panel_type":"Vega2"}"#)]),
            update(&[
                ("lr", "0.1"),
                (
                    "_wandb",
                    r#"{"mask/class_labels":{"img_wandb_delimeter_pred":{"key":"img","value":{"1":"cat"}}}}"#,
                ),
            ]),
            update(&[("_wandb", "{}")]),
        ],
        json!({
            "_wandb": {
                "visualize": {"roc": {"panel_type": "Vega2"}},
                "mask/class_labels": {"img_wandb_delimeter_pred": {"key": "img", "value": {"1": "cat"}}},
            },
            "lr": 0.1,
        }),
    );
}

#[test]
fn a_nested_update_keeps_its_siblings() {
    // W&B's `TestConfigUpdate`.
    check(
        &[
            update(&[("b", r#"{"c":321.5,"d":123.5}"#)]),
            update(&[("a", "1"), ("b.c", "\"text\"")]),
        ],
        json!({"b": {"c": "text", "d": 123.5}, "a": 1}),
    );
}

#[test]
fn a_map_update_merges_and_other_values_replace() {
    check(
        &[
            update(&[("model", r#"{"a":1,"inner":{"x":1},"list":[1,2]}"#)]),
            update(&[("model", r#"{"b":2,"inner":{"y":2},"list":[3]}"#)]),
        ],
        json!({"model": {"a": 1, "inner": {"x": 1, "y": 2}, "list": [3], "b": 2}}),
    );
    // A scalar replaces a map, a map replaces a scalar, and an empty map sets nothing.
    check(
        &[
            update(&[("a", r#"{"x":1}"#), ("b", "1")]),
            update(&[
                ("a", "2"),
                ("b", r#"{"y":1}"#),
                ("c", "{}"),
                ("d", r#"{"e":{}}"#),
            ]),
        ],
        json!({"a": 2, "b": {"y": 1}}),
    );
    // A nested key through a scalar makes it a map.
    check(
        &[update(&[("a", "1")]), update(&[("a.b.c", "true")])],
        json!({"a": {"b": {"c": true}}}),
    );
}

#[test]
fn a_nested_remove_removes_only_it() {
    // W&B's `TestConfigRemove`.
    check(
        &[
            update(&[("a", "9"), ("b", r#"{"c":321.5,"d":123.5}"#)]),
            remove(&["a", "b.c"]),
        ],
        json!({"b": {"d": 123.5}}),
    );
}

#[test]
fn a_remove_prunes_the_maps_it_empties() {
    check(
        &[
            update(&[
                ("_wandb.visualize.roc", "1"),
                ("_wandb.t", "2"),
                ("x", r#"{"y":{"z":1}}"#),
            ]),
            remove(&["_wandb.visualize.roc", "x.y.z"]),
        ],
        json!({"_wandb": {"t": 2}}),
    );
}

#[test]
fn a_remove_of_what_is_not_there_changes_nothing() {
    check(
        &[
            update(&[("a", "1"), ("b", r#"{"c":1}"#)]),
            remove(&["a.x", "b.c.d", "b.missing", "missing", "missing.deep"]),
        ],
        json!({"a": 1, "b": {"c": 1}}),
    );
}

#[test]
fn updates_apply_before_removals_in_one_record() {
    let mut record = update(&[("a", "1"), ("b", "2")]);
    record.remove.push(item("a", ""));
    check(&[record], json!({"b": 2}));
}
