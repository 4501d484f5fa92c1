//! cairn-store against real W&B 0.31 logs (`testdata/wandb-0.31`): decoding, byte-exact
//! rewriting, and recovery from every cut and from random byte flips.

mod damage;
mod fixtures;

use std::path::{Path, PathBuf};

use cairn_store::{Damage, LogReader};

/// Every `.wandb` file under `testdata/wandb-0.31`, sorted.
pub(crate) fn fixture_logs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wandb-0.31");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wandb") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "fixtures missing under {}", root.display());
    out
}

/// A record as read: where it starts, where the next chunk starts, and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Read {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) payload: Vec<u8>,
}

/// Reads a whole log from memory: records and damage in order.
pub(crate) fn read_bytes(bytes: &[u8]) -> (Vec<Read>, Vec<Damage>) {
    let mut reader = LogReader::new(bytes).expect("opens");
    let mut records = Vec::new();
    let mut damage = Vec::new();
    loop {
        let (start, payload) = match reader.next() {
            None => break,
            Some(Ok(r)) => (r.offset, r.payload.to_vec()),
            Some(Err(e)) => {
                damage.push(
                    e.damage()
                        .cloned()
                        .expect("in-memory reads fail only by damage"),
                );
                continue;
            }
        };
        records.push(Read {
            start,
            end: reader.position(),
            payload,
        });
    }
    (records, damage)
}
