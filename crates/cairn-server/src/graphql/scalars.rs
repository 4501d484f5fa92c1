//! The custom scalars of W&B's schema, as its clients declare them in variables.
//!
//! `JSONString` is JSON carried inside a string; `JSON` a JSON value as is; `Int64`,
//! and `Duration` (milliseconds) are numbers with their own names.
//! A variable declared with one of these names must meet an argument of the same name,
//! so each exists even where its value is treated like a plain string or number.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// JSON text in a string (`config`, `summaryMetrics`, …).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonString(pub String);

#[Scalar(name = "JSONString")]
impl ScalarType for JsonString {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => Ok(JsonString(text)),
            Value::Null => Err(InputValueError::custom("JSONString may not be null here")),
            // Some clients send the object itself: keep its JSON text.
            other => {
                let json = other
                    .into_json()
                    .map_err(|err| InputValueError::custom(err.to_string()))?;
                Ok(JsonString(json.to_string()))
            }
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A 64-bit integer (`HistoryPage`'s step bounds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Int64(pub i64);

#[Scalar(name = "Int64")]
impl ScalarType for Int64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Int64)
                .ok_or_else(|| InputValueError::custom("Int64 out of range")),
            Value::String(s) => s
                .parse()
                .map(Int64)
                .map_err(|_| InputValueError::custom("Int64 must be an integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A duration in milliseconds (`waitDuration` of alerts).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Duration(pub i64);

#[Scalar(name = "Duration")]
impl ScalarType for Duration {
    fn parse(value: Value) -> InputValueResult<Self> {
        Int64::parse(value)
            .map(|v| Duration(v.0))
            .map_err(InputValueError::propagate)
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}
