//! The run filter and order language of `wandb.Api().runs(filters=…, order=…)`: a subset
//! of MongoDB's query language over a run's fields, config and summary.
//!
//! Input: the filter as JSON text (`{"config.lr": 0.1, "tags": {"$in": ["a"]}}`) and an
//! order string (`-summary_metrics.loss`). Output: whether a run matches, and how two
//! runs compare. Pure functions over [`RunDoc`]; the caller loads runs and pages them.
//! An operator this module does not know is an error naming it, found before any run is
//! looked at.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// A filter that cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum FilterError {
    #[error("filters are not valid JSON: {0}")]
    Json(String),
    #[error("unsupported filter operator {0}")]
    Operator(String),
    #[error("malformed filter: {0}")]
    Malformed(String),
}

/// What a filter can see of one run.
#[derive(Debug, Default)]
pub(crate) struct RunDoc {
    /// Top-level fields by their canonical (camelCase) name: `name`, `displayName`,
    /// `state`, `tags`, `group`, `jobType`, `createdAt`, `heartbeatAt`, `username`,
    /// `host`, `sweep`, `duration`, `notes`, `description`.
    pub fields: Map<String, Value>,
    /// The stored config, `{"key": {"value": v}}`.
    pub config: Value,
    /// The summary object.
    pub summary: Value,
}

const OPERATORS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$regex",
    "$contains",
    "$all",
    "$size",
    "$not",
    "$options",
];

/// Parses and checks a filter text; `""` and `"{}"` mean "every run".
pub(crate) fn parse(text: Option<&str>) -> Result<Value, FilterError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("{}");
    let value: Value = serde_json::from_str(text).map_err(|e| FilterError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(FilterError::Malformed(
            "a filter must be a JSON object".to_owned(),
        ));
    }
    check(&value)?;
    Ok(value)
}

fn check(filter: &Value) -> Result<(), FilterError> {
    let Some(object) = filter.as_object() else {
        return Err(FilterError::Malformed(format!(
            "expected an object, got {filter}"
        )));
    };
    for (key, value) in object {
        match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let Some(list) = value.as_array() else {
                    return Err(FilterError::Malformed(format!("{key} takes a list")));
                };
                for item in list {
                    check(item)?;
                }
            }
            k if k.starts_with('$') => return Err(FilterError::Operator(k.to_owned())),
            _ => check_condition(value)?,
        }
    }
    Ok(())
}

fn check_condition(condition: &Value) -> Result<(), FilterError> {
    if let Some(ops) = operator_object(condition) {
        for (op, arg) in ops {
            if !OPERATORS.contains(&op.as_str()) {
                return Err(FilterError::Operator(op.clone()));
            }
            if op == "$not" {
                check_condition(arg)?;
            }
            if op == "$regex" {
                let pattern = arg
                    .as_str()
                    .ok_or_else(|| FilterError::Malformed("$regex takes a string".to_owned()))?;
                regex::Regex::new(pattern)
                    .map_err(|e| FilterError::Malformed(format!("bad $regex: {e}")))?;
            }
        }
    }
    Ok(())
}

/// An object whose keys all start with `$` is a set of operators; anything else is a value.
fn operator_object(value: &Value) -> Option<&Map<String, Value>> {
    let object = value.as_object()?;
    (!object.is_empty() && object.keys().all(|k| k.starts_with('$'))).then_some(object)
}

/// Whether `doc` matches `filter` (already [`parse`]d).
pub(crate) fn matches(filter: &Value, doc: &RunDoc) -> bool {
    let Some(object) = filter.as_object() else {
        return false;
    };
    object.iter().all(|(key, value)| match key.as_str() {
        "$and" => list(value).iter().all(|f| matches(f, doc)),
        "$or" => list(value).iter().any(|f| matches(f, doc)),
        "$nor" => !list(value).iter().any(|f| matches(f, doc)),
        path => condition(lookup(doc, path).as_ref(), value),
    })
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn condition(field: Option<&Value>, condition: &Value) -> bool {
    match operator_object(condition) {
        Some(ops) => ops.iter().all(|(op, arg)| operator(field, op, arg, ops)),
        None => equals(field, condition),
    }
}

fn operator(field: Option<&Value>, op: &str, arg: &Value, all: &Map<String, Value>) -> bool {
    match op {
        "$eq" => equals(field, arg),
        "$ne" => !equals(field, arg),
        "$gt" => compare(field, arg).is_some_and(Ordering::is_gt),
        "$gte" => compare(field, arg).is_some_and(Ordering::is_ge),
        "$lt" => compare(field, arg).is_some_and(Ordering::is_lt),
        "$lte" => compare(field, arg).is_some_and(Ordering::is_le),
        "$in" => list(arg).iter().any(|a| equals(field, a)),
        "$nin" => !list(arg).iter().any(|a| equals(field, a)),
        "$exists" => {
            let present = field.is_some_and(|f| !f.is_null());
            present == arg.as_bool().unwrap_or(true)
        }
        "$regex" => {
            let insensitive = all
                .get("$options")
                .and_then(Value::as_str)
                .is_some_and(|o| o.contains('i'));
            let pattern = arg.as_str().unwrap_or_default();
            let Ok(re) = regex::RegexBuilder::new(pattern)
                .case_insensitive(insensitive)
                .build()
            else {
                return false;
            };
            match field {
                Some(Value::String(s)) => re.is_match(s),
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|i| i.as_str().is_some_and(|s| re.is_match(s))),
                _ => false,
            }
        }
        "$options" => true,
        "$contains" => match (field, arg) {
            (Some(Value::String(s)), Value::String(sub)) => s.contains(sub.as_str()),
            (Some(Value::Array(items)), a) => items.iter().any(|i| same(i, a)),
            _ => false,
        },
        "$all" => match field {
            Some(Value::Array(items)) => list(arg).iter().all(|a| items.iter().any(|i| same(i, a))),
            _ => false,
        },
        "$size" => match field {
            Some(Value::Array(items)) => arg.as_u64() == Some(items.len() as u64),
            _ => false,
        },
        "$not" => !condition(field, arg),
        _ => false,
    }
}

/// Equality with MongoDB's array rule: an array field equals a value it contains.
fn equals(field: Option<&Value>, value: &Value) -> bool {
    match field {
        None | Some(Value::Null) => value.is_null(),
        Some(Value::Array(items)) if !value.is_array() => items.iter().any(|i| same(i, value)),
        Some(f) => same(f, value),
    }
}

/// Value equality where numbers compare numerically (`1 == 1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Numbers with numbers, strings with strings; anything else does not compare.
fn compare(field: Option<&Value>, value: &Value) -> Option<Ordering> {
    match (field?, value) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

/// The value at a field path: `config.k[.value][.nested]`,
/// `summary_metrics.k[.nested]`, `tags.<tag>`, or a run field in camelCase or snake_case.
pub(crate) fn lookup(doc: &RunDoc, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let head = parts.next()?;
    match head {
        "config" => {
            let key = parts.next()?;
            let mut value = doc.config.get(key)?.get("value")?;
            let mut rest: Vec<&str> = parts.collect();
            if rest.first() == Some(&"value") {
                rest.remove(0);
            }
            for part in rest {
                value = value.get(part)?;
            }
            Some(value.clone())
        }
        "summary_metrics" | "summaryMetrics" | "summary" => {
            let mut value = &doc.summary;
            for part in parts {
                value = value.get(part)?;
            }
            Some(value.clone())
        }
        "tags" => {
            let tags = doc.fields.get("tags")?;
            match parts.next() {
                Some(tag) => Some(Value::Bool(
                    tags.as_array()
                        .is_some_and(|t| t.iter().any(|x| x.as_str() == Some(tag))),
                )),
                None => Some(tags.clone()),
            }
        }
        field => {
            let canonical = match field {
                "display_name" => "displayName",
                "job_type" => "jobType",
                "created_at" => "createdAt",
                "heartbeat_at" => "heartbeatAt",
                "group_name" => "group",
                other => other,
            };
            let mut value = doc.fields.get(canonical)?;
            for part in parts {
                value = value.get(part)?;
            }
            Some(value.clone())
        }
    }
}

/// A parsed `order` argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub path: String,
    pub descending: bool,
}

/// `+path`, `-path` or `path`; empty means `+created_at`.
pub(crate) fn parse_order(text: Option<&str>) -> Order {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("+created_at");
    let (descending, path) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    Order {
        path: path.to_owned(),
        descending,
    }
}

/// Compares two sort keys: missing values last in both directions, numbers before strings
/// before anything else.
pub(crate) fn order_cmp(a: Option<&Value>, b: Option<&Value>, descending: bool) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            _ => 3,
        }
    }
    let a = a.filter(|v| !v.is_null());
    let b = b.filter(|v| !v.is_null());
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let by_kind = rank(x).cmp(&rank(y));
            let ordering = if by_kind != Ordering::Equal {
                by_kind
            } else {
                match (x, y) {
                    (Value::Number(p), Value::Number(q)) => p
                        .as_f64()
                        .partial_cmp(&q.as_f64())
                        .unwrap_or(Ordering::Equal),
                    (Value::String(p), Value::String(q)) => p.cmp(q),
                    (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
                    _ => Ordering::Equal,
                }
            };
            if descending {
                ordering.reverse()
            } else {
                ordering
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> RunDoc {
        let fields = json!({
            "name": "a1b2c3d4", "displayName": "alpha-1", "state": "finished",
            "tags": ["baseline", "t1"], "group": "g1", "jobType": "train",
            "createdAt": "2026-11-22T00:45:19",
        });
        RunDoc {
            fields: fields.as_object().unwrap().clone(),
            config: json!({"lr": {"value": 0.1}, "opt": {"value": {"name": "adam", "beta": 0.9}}}),
            summary: json!({"acc": 0.5, "loss": 1, "nested": {"x": 2}}),
        }
    }

    fn check(filter: &str, expect: bool) {
        let parsed = parse(Some(filter)).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(matches(&parsed, &doc()), expect, "{filter}");
    }

    #[test]
    fn filters_match_like_mongodb() {
        for (filter, expect) in [
            ("{}", true),
            (r#"{"config.lr": 0.1}"#, true),
            (r#"{"config.lr.value": 0.1}"#, true),
            (r#"{"config.lr": 0.2}"#, false),
            (r#"{"config.opt.name": "adam"}"#, true),
            (r#"{"config.opt": {"name": "adam", "beta": 0.9}}"#, true),
            (r#"{"summary_metrics.acc": {"$gt": 0.4}}"#, true),
            (
                r#"{"summary_metrics.acc": {"$gte": 0.29, "$lt": 0.7}}"#,
                true,
            ),
            (r#"{"summary_metrics.loss": 1.0}"#, true),
            (r#"{"summary_metrics.nested.x": 2}"#, true),
            (r#"{"summary_metrics.missing": {"$gt": 0}}"#, false),
            (r#"{"summary_metrics.missing": null}"#, true),
            (r#"{"summary_metrics.missing": {"$ne": 1}}"#, true),
            (r#"{"summary_metrics.acc": {"$exists": true}}"#, true),
            (r#"{"summary_metrics.zzz": {"$exists": false}}"#, true),
            (r#"{"display_name": {"$regex": "^alpha"}}"#, true),
            (r#"{"displayName": {"$regex": "pha-"}}"#, true),
            (
                r#"{"displayName": {"$regex": "^ALPHA", "$options": "i"}}"#,
                true,
            ),
            (r#"{"tags": "t1"}"#, true),
            (r#"{"tags": {"$in": ["t1"]}}"#, true),
            (r#"{"tags": {"$nin": ["t1"]}}"#, false),
            (r#"{"tags": {"$all": ["t1", "baseline"]}}"#, true),
            (r#"{"tags": {"$size": 2}}"#, true),
            (r#"{"tags": {"$contains": "t1"}}"#, true),
            (r#"{"tags.t1": true}"#, true),
            (r#"{"displayName": {"$contains": "lph"}}"#, true),
            (r#"{"createdAt": {"$gt": "2026-11-22T00:00:00"}}"#, true),
            (r#"{"created_at": {"$lt": "2026-11-22T00:00:00"}}"#, false),
            (
                r#"{"$and": [{"config.lr": 0.1}, {"state": "finished"}]}"#,
                true,
            ),
            (
                r#"{"$or": [{"$and": [{"state": "failed"}, {"tags": "exp"}]}, {"jobType": "eval"}]}"#,
                false,
            ),
            (r#"{"$nor": [{"state": "failed"}]}"#, true),
            (r#"{"config.lr": {"$not": {"$gt": 0.05}}}"#, false),
            (r#"{"job_type": "train", "group": "g1"}"#, true),
        ] {
            check(filter, expect);
        }
    }

    #[test]
    fn bad_filters_are_errors() {
        assert_eq!(
            parse(Some(r#"{"a": {"$bogus": 1}}"#)),
            Err(FilterError::Operator("$bogus".to_owned()))
        );
        assert!(matches!(parse(Some("{")), Err(FilterError::Json(_))));
        assert!(parse(Some("[1]")).is_err());
        assert!(parse(Some(r#"{"$and": 1}"#)).is_err());
        assert!(parse(Some(r#"{"a": {"$regex": "("}}"#)).is_err());
        assert!(parse(Some(r#"{"$where": "x"}"#)).is_err());
    }

    #[test]
    fn orders_put_missing_last() {
        assert!(parse_order(Some("-created_at")).descending);
        assert_eq!(parse_order(None).path, "created_at");
        let one = json!(1);
        let two = json!(2);
        assert_eq!(order_cmp(Some(&one), Some(&two), false), Ordering::Less);
        assert_eq!(order_cmp(Some(&one), Some(&two), true), Ordering::Greater);
        assert_eq!(order_cmp(None, Some(&two), true), Ordering::Greater);
        assert_eq!(order_cmp(None, Some(&two), false), Ordering::Greater);
        assert_eq!(
            order_cmp(Some(&json!("a")), Some(&one), false),
            Ordering::Greater
        );
    }
}
