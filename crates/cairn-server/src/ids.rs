//! The opaque object ids W&B's clients see — in GraphQL answers and in artifact manifests
//! (`birthArtifactID`): standard base64 of `Kind:v1:number`. The SDK base64-decodes some
//! of them, so they must be valid base64. Pure functions, no IO.

use base64::Engine as _;

/// The id of object `id` of `kind`.
pub(crate) fn encode(kind: &str, id: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{kind}:v1:{id}"))
}

/// The number inside an id of `kind`, if it is one.
pub(crate) fn decode(kind: &str, id: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(id).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix(kind)?.strip_prefix(":v1:")?;
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = encode("Artifact", 2);
        assert_eq!(id, "QXJ0aWZhY3Q6djE6Mg==");
        assert_eq!(decode("Artifact", &id), Some(2));
        assert_eq!(decode("Run", &id), None);
        assert_eq!(decode("Artifact", "not base64!"), None);
    }
}
