//! Input rules every surface applies the same way: names (entities, projects, runs,
//! artifacts, tags) and JSON-object texts (configs, summaries, metadata).
//!
//! Input: a client's text. Output: `Ok`, or an [`ApiError::BadRequest`] naming the field
//! and the rule it breaks. Pure functions, no IO.

use serde_json::Value;

use crate::error::ApiError;

/// Entity, project and run names: 1–128 characters, no `/`, no control characters.
pub(crate) fn check_entity_name(name: &str) -> Result<(), ApiError> {
    check_name("entity", name)
}

/// See [`check_entity_name`].
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::BadRequest(format!(
            "{what} name must have 1 to 128 characters: {:?}",
            name.chars().take(64).collect::<String>()
        )));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{what} name {name:?} contains `/` or a control character"
        )));
    }
    Ok(())
}

/// A JSON-text input that must hold an object, as given; the error names `field`.
pub(crate) fn json_object(field: &str, text: &str) -> Result<String, ApiError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_)) => Ok(text.to_owned()),
        Ok(_) => Err(ApiError::BadRequest(format!(
            "{field} must be a JSON object"
        ))),
        Err(err) => Err(ApiError::BadRequest(format!(
            "{field} is not valid JSON: {err}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("project", "p-1").is_ok());
        assert!(check_name("project", "").is_err());
        assert!(check_name("project", "a/b").is_err());
        assert!(check_name("project", "a\nb").is_err());
        assert!(check_name("project", &"x".repeat(200)).is_err());
    }

    #[test]
    fn json_objects_are_checked() {
        assert_eq!(json_object("config", r#"{"a":1}"#).unwrap(), r#"{"a":1}"#);
        assert!(
            json_object("config", "[1]")
                .unwrap_err()
                .to_string()
                .contains("config")
        );
        assert!(json_object("config", "{").is_err());
    }
}
