//! `cairn dump FILE.wandb`: a transaction log's records as JSON lines.
//!
//! Input: the path of a `.wandb` log. Output on stdout: one JSON object per record, in file
//! order, in the canonical protobuf JSON mapping with original field names (what W&B's
//! Python classes print with `MessageToDict(preserving_proto_field_name=True)`); with
//! `--kinds`, a count per record kind instead. Problems go to stderr, one line each with
//! the byte offset: damage the reader recovered from, a torn tail, a record that does not
//! decode. Every intact record is printed whatever else is wrong.
//!
//! Exit status: 0 for a clean log, 2 for a missing, foreign or damaged file.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use cairn_proto::Record;
use cairn_store::{LogReader, OpenError};
use prost::Message;

use super::Status;

/// Arguments of `cairn dump`.
#[derive(Debug, clap::Args)]
pub(crate) struct DumpArgs {
    /// The `.wandb` file to read.
    file: PathBuf,
    /// Print how many records of each kind the log holds instead of the records.
    #[arg(long)]
    kinds: bool,
}

const RECORD_TYPE: &str = "wandb_internal.Record";

#[allow(
    clippy::print_stderr,
    reason = "dump reports problems on stderr by design"
)]
fn report(problem: impl std::fmt::Display) {
    eprintln!("cairn dump: {problem}");
}

pub(crate) fn run(args: &DumpArgs) -> Result<Status> {
    let mut reader = match LogReader::open(&args.file) {
        Ok(reader) => reader,
        Err(err @ (OpenError::Io { .. } | OpenError::NotALog { .. })) => {
            report(err);
            return Ok(Status::BadInput);
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut problems = 0u64;
    let mut records = 0u64;
    while let Some(item) = reader.next() {
        let record = match item {
            Ok(record) => record,
            Err(err) => {
                report(err);
                problems += 1;
                continue;
            }
        };
        let printed = if args.kinds {
            Record::decode(record.payload)
                .map(|r| *kinds.entry(r.kind()).or_default() += 1)
                .map_err(|e| e.to_string())
        } else {
            match cairn_proto::json::write_payload_json(&mut out, RECORD_TYPE, record.payload) {
                Ok(()) => Ok(()),
                Err(cairn_proto::json::JsonError::Serialize { source, .. }) if source.is_io() => {
                    return finish_output(Err(source.into()));
                }
                Err(err) => Err(err.to_string()),
            }
        };
        match printed {
            Ok(()) => {
                records += 1;
                if !args.kinds
                    && let Err(err) = out.write_all(b"\n")
                {
                    return finish_output(Err(err));
                }
            }
            Err(err) => {
                report(format_args!(
                    "{}: record at byte {}: {err}",
                    args.file.display(),
                    record.offset
                ));
                problems += 1;
            }
        }
    }
    if args.kinds {
        for (kind, count) in &kinds {
            if let Err(err) = writeln!(out, "{kind}\t{count}") {
                return finish_output(Err(err));
            }
        }
    }
    finish_output(out.flush())?;
    if problems > 0 {
        report(format_args!(
            "{}: {records} records recovered, {problems} problem(s)",
            args.file.display()
        ));
        return Ok(Status::BadInput);
    }
    Ok(Status::Success)
}

/// A reader that stopped reading our output (`cairn dump f | head`) is not an error.
fn finish_output(result: io::Result<()>) -> Result<Status> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(Status::Success),
        other => other
            .context("cannot write to stdout")
            .map(|()| Status::Success),
    }
}
