//! [`LogFollower`]: reads the records a log gained since the last call, from the end of the last
//! whole record (`LogReader::seek_to`), so a live upload can poll the log the writer is still
//! appending to.
//!
//! A record cut by a write in progress (a torn tail) is read on the next call; damage in the
//! middle is reported and read past. Each call opens the log afresh and holds no more than the
//! record being handed over; nothing stays open between calls.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cairn_proto::Record;
use cairn_store::LogReader;

use super::report::{UploadError, UploadReport};

/// Reads the records a log gained since the last call, from where the last one ended.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    resume: u64,
    progress: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl LogFollower {
    /// Follows the log at `path` from its first record.
    pub fn new(path: impl Into<PathBuf>) -> LogFollower {
        LogFollower {
            path: path.into(),
            resume: 0,
            progress: None,
        }
    }

    /// Publishes how many bytes of the log have been read (for a progress display).
    pub fn with_progress(mut self, progress: Arc<std::sync::atomic::AtomicU64>) -> LogFollower {
        self.progress = Some(progress);
        self
    }

    /// Hands every whole record written since the last call to `each`, until `each`
    /// answers `false` (enough for now: the next call goes on after that record); a record
    /// cut by a write in progress is read on the next call. Damage in the middle is
    /// reported and read past. Stops early when `each` fails. Returns the records read.
    pub fn read_new(
        &mut self,
        report: &mut UploadReport,
        mut each: impl FnMut(&Record) -> Result<bool, UploadError>,
    ) -> Result<usize, UploadError> {
        let mut reader = LogReader::open(&self.path)?;
        if self.resume > 0 {
            reader
                .seek_to(self.resume)
                .map_err(|source| UploadError::Io {
                    path: self.path.clone(),
                    source,
                })?;
        }
        let mut n = 0;
        while let Some(item) = reader.next() {
            match item {
                Ok(record) => {
                    let decoded = record.decode();
                    let end = reader.position();
                    let more = match decoded {
                        Ok(record) => {
                            let more = each(&record)?;
                            n += 1;
                            more
                        }
                        Err(err) => {
                            report.damage.push(format!(
                                "{}: a record does not decode: {err}",
                                self.path.display()
                            ));
                            true
                        }
                    };
                    self.resume = end;
                    if let Some(progress) = &self.progress {
                        progress.store(end, Ordering::Relaxed);
                    }
                    if !more {
                        break;
                    }
                }
                Err(err) => {
                    if err.damage().is_some_and(|d| d.is_torn_tail()) {
                        break; // not written yet (or the run was cut here)
                    }
                    report.damage.push(err.to_string());
                }
            }
        }
        Ok(n)
    }
}
