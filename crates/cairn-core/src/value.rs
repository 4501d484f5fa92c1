//! Logged values and their JSON text as W&B stores it in `value_json`: cairn-proto's
//! [`cairn_proto::value`], here under the name the pipeline and the SDK use. The server
//! reads the same JSON with the same reader, which is why it lives in cairn-proto.

pub use cairn_proto::value::*;
