//! Media a run logs as W&B does: tables ([`Table`], [`Run::log_table`](crate::Run::log_table))
//! and PNG images ([`Run::log_image`](crate::Run::log_image)).
//!
//! Each is a file under the run's `files/media/` (`table/<key>_<step>_<hash>.table.json`,
//! `images/<key>_<step>_<hash>.png`, the hash being the first 20 hex digits of the file's
//! SHA-256), uploaded as a run file, and a descriptor in the history row (`_type`
//! `table-file` / `image-file`, with the path, SHA-256, size and shape), which W&B's UI and
//! `wandb.Api()` read. A table is also logged as a `run_table` artifact
//! `run-<run id>-<key>` whose one entry is `<key>.table.json`; the descriptor refers to it
//! by client id (`wandb-client-artifact://…`), as W&B's does.

use sha2::{Digest as _, Sha256};

/// A table of rows under named columns.
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct Table {
    columns: Vec<String>,
    data: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            data: Vec::new(),
        }
    }

    /// Adds a row (its length should match the columns).
    pub fn row(mut self, values: impl IntoIterator<Item = serde_json::Value>) -> Table {
        self.data.push(values.into_iter().collect());
        self
    }

    /// The table's file: W&B's `{"columns": [...], "data": [[...]]}`.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"columns": self.columns, "data": self.data}))
            .unwrap_or_default()
    }

    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.columns.len(), self.data.len())
    }
}

/// The SHA-256 of `bytes`, hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `<key>_<step>_<hash20>.<ext>`, with `/` in the key (nested keys) made `_`.
pub(crate) fn media_file_name(key: &str, step: i64, sha256: &str, ext: &str) -> String {
    let key: String = key
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{key}_{step}_{}.{ext}", &sha256[..20])
}

/// The width and height of a PNG, from its header; `None` when `bytes` is not a PNG.
pub(crate) fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_serialize_as_wandb() {
        let table = Table::new(["a", "b"])
            .row([serde_json::json!(1), serde_json::json!("x")])
            .row([serde_json::json!(2), serde_json::json!("y")]);
        assert_eq!(
            String::from_utf8(table.to_json()).unwrap(),
            r#"{"columns":["a","b"],"data":[[1,"x"],[2,"y"]]}"#
        );
        assert_eq!(table.shape(), (2, 2));
    }

    #[test]
    fn media_names_and_pngs() {
        let sha = sha256_hex(b"abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            media_file_name("val/img", 3, &sha, "png"),
            "val_img_3_ba7816bf8f01cfea4141.png"
        );
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&8u32.to_be_bytes());
        png.extend_from_slice(&6u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((8, 6)));
        assert_eq!(png_size(b"GIF89a................."), None);
    }
}
