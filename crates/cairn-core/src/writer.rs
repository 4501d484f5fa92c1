//! The writer stage: appends the run's records to its `.wandb` transaction log.
//!
//! Input: a bounded channel of [`Record`]s from the handler; when it is full the handler
//! waits (backpressure from the local disk, never from the network). Output: the same
//! records, numbered, to the sender's bounded channel.
//!
//! Every record that is not a request and not `control.local` gets the next record number
//! (1, 2, 3, ...) and is appended. The stage drains whatever is queued, pushes it all and
//! commits once (group commit): once a record has left this stage it has been handed to
//! the OS, so killing the process loses nothing the writer saw. The log's sync policy
//! applies at each commit, and an idle writer syncs when its interval is due.
//!
//! Shutdown: the stage ends when its input closes (the handler finished), after a final
//! commit and sync; it then drops its output, which ends the sender. A write error is
//! reported once in the [`WriterReport`]; later records still reach the sender (the
//! network side must not lose what the disk could not keep).

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use cairn_proto::Record;
use cairn_store::{LogSink, LogWriter, WriteError};
use prost::Message;

/// Records drained from the input per commit, at most.
const MAX_BATCH: usize = 1024;

/// Bytes pushed per commit, about: a batch stops draining past this.
const MAX_BATCH_BYTES: u64 = 256 * 1024;

/// How often an idle writer checks whether its sync interval is due.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// What the writer did, returned when it ends.
#[derive(Debug, Default)]
pub struct WriterReport {
    /// Records appended to the log.
    pub records: u64,
    /// Bytes of the log when the writer finished.
    pub bytes: u64,
    /// The first write error, if any; records after it were not persisted.
    pub error: Option<WriteError>,
}

/// Which records go on to the sender (offline, it needs no history rows).
pub type Forward = fn(&Record) -> bool;

/// Runs the writer stage on the current thread until `input` closes. Input and output
/// carry batches of records (one channel operation per batch, not per record); records
/// for which `forward` says no are dropped after they are written.
pub fn run<S: LogSink>(
    mut log: LogWriter<S>,
    input: Receiver<Vec<Record>>,
    output: Option<(SyncSender<Vec<Record>>, Forward)>,
) -> WriterReport {
    let mut report = WriterReport::default();
    let mut num: i64 = 0;
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut buf = Vec::new();
    loop {
        let first = match input.recv_timeout(IDLE_TICK) {
            Ok(records) => records,
            Err(RecvTimeoutError::Timeout) => {
                if report.error.is_none()
                    && let Err(e) = log.sync_if_due()
                {
                    report.error = Some(e);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        batch.extend(first);
        while batch.len() < MAX_BATCH {
            match input.try_recv() {
                Ok(records) => batch.extend(records),
                Err(_) => break,
            }
        }
        let mut committed_at = log.end_offset();
        for record in &mut batch {
            if !is_persisted(record) || report.error.is_some() {
                continue;
            }
            num += 1;
            record.num = num;
            buf.clear();
            // Encoding into a Vec cannot fail.
            let _ = record.encode(&mut buf);
            match log.push(&buf) {
                Ok(_) => report.records += 1,
                Err(e) => report.error = Some(e),
            }
            if report.error.is_none() && log.end_offset() - committed_at >= MAX_BATCH_BYTES {
                if let Err(e) = log.commit() {
                    report.error = Some(e);
                }
                committed_at = log.end_offset();
            }
        }
        if report.error.is_none()
            && let Err(e) = log.commit()
        {
            report.error = Some(e);
        }
        match &output {
            Some((out, forward)) => {
                let onward: Vec<Record> = batch.drain(..).filter(forward).collect();
                if !onward.is_empty() {
                    // A sender that is gone has ended: nothing more to forward to.
                    let _ = out.send(onward);
                }
            }
            None => batch.clear(),
        }
    }
    report.bytes = log.end_offset();
    if report.error.is_none()
        && let Err(e) = log.finish()
    {
        report.error = Some(e);
    }
    report
}

/// Whether a record goes into the log: requests and `control.local` records do not.
pub fn is_persisted(record: &Record) -> bool {
    let is_request = matches!(
        record.record_type,
        Some(cairn_proto::record::RecordType::Request(_))
    );
    let local = record.control.as_ref().is_some_and(|c| c.local);
    !is_request && !local
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use cairn_proto::record::RecordType;
    use cairn_proto::{Control, Request, RunExitRecord};
    use cairn_store::{LogReader, SyncPolicy};

    use super::*;

    fn exit_record() -> Record {
        Record {
            record_type: Some(RecordType::Exit(RunExitRecord::default())),
            ..Default::default()
        }
    }

    #[test]
    fn numbers_and_persists_records_but_not_requests_or_local_ones() {
        let (tx, rx) = sync_channel(16);
        let (out_tx, out_rx) = sync_channel(16);
        tx.send(vec![exit_record()]).unwrap();
        tx.send(vec![Record {
            record_type: Some(RecordType::Request(Request::default())),
            ..Default::default()
        }])
        .unwrap();
        tx.send(vec![
            Record {
                control: Some(Control {
                    local: true,
                    ..Default::default()
                }),
                ..exit_record()
            },
            exit_record(),
        ])
        .unwrap();
        drop(tx);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run-x.wandb");
        let log = LogWriter::create(&path, SyncPolicy::Never).unwrap();
        let report = run(log, rx, Some((out_tx, |_| true)));
        assert!(report.error.is_none());
        assert_eq!(report.records, 2);
        let forwarded: Vec<Record> = out_rx.iter().flatten().collect();
        assert_eq!(forwarded.len(), 4, "everything reaches the sender");
        assert_eq!(
            forwarded.iter().map(|r| r.num).collect::<Vec<_>>(),
            [1, 0, 0, 2]
        );
        let nums: Vec<i64> = LogReader::open(&path)
            .unwrap()
            .records()
            .map(|r| r.unwrap().1.num)
            .collect();
        assert_eq!(nums, [1, 2]);
    }
}
