//! Canonical protobuf JSON for every message of this crate.
//!
//! The mapping is the one `google.protobuf.json_format.MessageToDict(msg,
//! preserving_proto_field_name=True)` produces, so cairn's output compares equal to what
//! W&B's own Python classes print: original field names (`run_id`, `_info`), fields at
//! their default value left out, 64-bit integers as strings, enums by name, bytes as
//! base64, `Timestamp` as RFC 3339, wrapper types as their plain value, and non-finite
//! floats as `"NaN"`, `"Infinity"`, `"-Infinity"`.
//!
//! Input: encoded payloads or typed messages. Output: `serde_json::Value`s or JSON text.
//! Parsing accepts both original and camelCase names, as the canonical mapping allows.
//!
//! Conversion goes through [`prost_reflect`] dynamic messages built from the crate's
//! descriptor set ([`crate::DESCRIPTOR_SET`]), loaded once per process.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};

/// Why a message could not be converted to or from JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The message name is not defined in cairn's descriptors.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The bytes are not a valid encoding of the message.
    #[error("cannot decode `{type_name}`: {source}")]
    Decode {
        /// Full name of the message that was expected.
        type_name: String,
        /// What the protobuf decoder reported.
        #[source]
        source: prost::DecodeError,
    },
    /// The JSON text does not describe the message.
    #[error("invalid JSON for `{type_name}`: {source}")]
    Parse {
        /// Full name of the message that was expected.
        type_name: String,
        /// What the JSON parser reported.
        #[source]
        source: serde_json::Error,
    },
    /// Serialising the message failed (cannot happen for well-formed messages).
    #[error("cannot serialise `{type_name}`: {source}")]
    Serialize {
        /// Full name of the message.
        type_name: String,
        /// What the serialiser reported.
        #[source]
        source: serde_json::Error,
    },
}

/// The descriptor pool of every message in this crate.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The descriptor set is generated together with the code and checked by a test,
        // so failing to decode it is a build defect, not a runtime condition.
        DescriptorPool::decode(crate::DESCRIPTOR_SET).expect("cairn-proto descriptor set")
    })
}

/// The descriptor of the message with the given full name (`wandb_internal.Record`).
pub fn descriptor(type_name: &str) -> Result<MessageDescriptor, JsonError> {
    pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.to_owned()))
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(true)
        .skip_default_fields(true)
        .use_enum_numbers(false)
}

/// Converts an encoded message of type `type_name` to its JSON value.
pub fn payload_to_value(type_name: &str, payload: &[u8]) -> Result<serde_json::Value, JsonError> {
    let desc = descriptor(type_name)?;
    let msg = DynamicMessage::decode(desc, payload).map_err(|source| JsonError::Decode {
        type_name: type_name.to_owned(),
        source,
    })?;
    dynamic_to_value(&msg)
}

/// Writes an encoded message of type `type_name` as one line of compact JSON (no newline).
pub fn write_payload_json<W: std::io::Write>(
    out: W,
    type_name: &str,
    payload: &[u8],
) -> Result<(), JsonError> {
    let desc = descriptor(type_name)?;
    let msg = DynamicMessage::decode(desc, payload).map_err(|source| JsonError::Decode {
        type_name: type_name.to_owned(),
        source,
    })?;
    let mut ser = serde_json::Serializer::new(out);
    msg.serialize_with_options(&mut ser, &serialize_options())
        .map_err(|source| JsonError::Serialize {
            type_name: type_name.to_owned(),
            source,
        })
}

fn dynamic_to_value(msg: &DynamicMessage) -> Result<serde_json::Value, JsonError> {
    msg.serialize_with_options(serde_json::value::Serializer, &serialize_options())
        .map_err(|source| JsonError::Serialize {
            type_name: msg.descriptor().full_name().to_owned(),
            source,
        })
}

/// Converts a typed message to its JSON value.
pub fn to_value<M: Message + Name>(msg: &M) -> Result<serde_json::Value, JsonError> {
    payload_to_value(&M::full_name(), &msg.encode_to_vec())
}

/// Converts a typed message to its JSON value under the protocol's JSON names (`startedAt`,
/// `codePath`, and `cpu_count` where the protocol says so) — the form W&B writes its files
/// in, such as `wandb-metadata.json` — rather than the field names [`to_value`] uses.
pub fn to_value_json_names<M: Message + Name>(msg: &M) -> Result<serde_json::Value, JsonError> {
    let full_name = M::full_name();
    let desc = descriptor(&full_name)?;
    let dynamic =
        DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).map_err(|source| {
            JsonError::Decode {
                type_name: full_name.clone(),
                source,
            }
        })?;
    dynamic
        .serialize_with_options(
            serde_json::value::Serializer,
            &serialize_options().use_proto_field_name(false),
        )
        .map_err(|source| JsonError::Serialize {
            type_name: full_name,
            source,
        })
}

/// A message in the *numbered* form W&B keeps telemetry in (`config._wandb.t`): each
/// set field under its field number; a sub-message of flags as the sorted list of the
/// numbers of its true fields; scalars as themselves. `_info` (200) is left out.
pub fn to_numbered<M: Message + Name>(msg: &M) -> Result<serde_json::Value, JsonError> {
    let descriptor = descriptor(&M::full_name())?;
    let dynamic = DynamicMessage::decode(descriptor.clone(), msg.encode_to_vec().as_slice())
        .map_err(|source| JsonError::Decode {
            type_name: descriptor.full_name().to_owned(),
            source,
        })?;
    let mut out = serde_json::Map::new();
    for (field, value) in dynamic.fields() {
        if field.number() >= 200 {
            continue;
        }
        let numbered = match value {
            prost_reflect::Value::Message(inner) => serde_json::Value::Array(
                inner
                    .fields()
                    .filter(|(_, v)| matches!(v, prost_reflect::Value::Bool(true)))
                    .map(|(f, _)| f.number().into())
                    .collect(),
            ),
            prost_reflect::Value::String(s) => s.clone().into(),
            prost_reflect::Value::Bool(b) => (*b).into(),
            prost_reflect::Value::I32(n) => (*n).into(),
            prost_reflect::Value::I64(n) => (*n).into(),
            prost_reflect::Value::U32(n) => (*n).into(),
            prost_reflect::Value::U64(n) => (*n).into(),
            prost_reflect::Value::EnumNumber(n) => (*n).into(),
            _ => continue,
        };
        out.insert(field.number().to_string(), numbered);
    }
    Ok(serde_json::Value::Object(out))
}

/// Converts a typed message to compact JSON text.
pub fn to_string<M: Message + Name>(msg: &M) -> Result<String, JsonError> {
    let mut out = Vec::new();
    write_payload_json(&mut out, &M::full_name(), &msg.encode_to_vec())?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Parses JSON text into the encoded bytes of a message of type `type_name`.
pub fn json_to_payload(type_name: &str, json: &str) -> Result<Vec<u8>, JsonError> {
    let desc = descriptor(type_name)?;
    let mut de = serde_json::Deserializer::from_str(json);
    let parse = |source| JsonError::Parse {
        type_name: type_name.to_owned(),
        source,
    };
    let msg = DynamicMessage::deserialize_with_options(desc, &mut de, &DeserializeOptions::new())
        .map_err(parse)?;
    de.end().map_err(parse)?;
    Ok(msg.encode_to_vec())
}

/// Parses JSON text into a typed message.
pub fn from_str<M: Message + Name + Default>(json: &str) -> Result<M, JsonError> {
    let payload = json_to_payload(&M::full_name(), json)?;
    M::decode(payload.as_slice()).map_err(|source| JsonError::Decode {
        type_name: M::full_name(),
        source,
    })
}

#[cfg(test)]
mod tests;
