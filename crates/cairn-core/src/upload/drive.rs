//! The two drivers of an [`Uploader`]: [`follow`] for a live run and [`sync_log`] for
//! `cairn sync`. Both read the log with a [`LogFollower`] and never hold more than one
//! request's worth of unsent lines (`drain`): what is not read yet stays in the log, not in
//! memory, however long the server is away.
//!
//! Threads: each runs on its caller's thread (the pipeline's `cairn-uploader`, or the sync's).
//! Shutdown: [`follow`] ends when told to finish ([`Control::Finish`], or its channel closing)
//! and the last records are sent, or when its abort flag is raised; [`sync_log`] ends at the
//! log's end (live: at its exit record) or when its `Until` ends.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::follower::LogFollower;
use super::report::{UploadError, UploadReport};
use super::settings::UploadSettings;
use super::uploader::Uploader;
use crate::client::Until;

/// Reads the log as far as it goes, never holding more than one request's worth of
/// unsent lines: when that much waits, a request goes out before reading on. What is not
/// read yet stays in the log, not in memory, however long the server is away.
fn drain(
    uploader: &mut Uploader,
    follower: &mut LogFollower,
    damage: &mut UploadReport,
    until: &Until,
) -> Result<(), UploadError> {
    let budget = uploader.request_budget();
    loop {
        let read = follower.read_new(damage, |record| {
            uploader.observe(record, until)?;
            Ok(uploader.backlog() < budget)
        })?;
        if uploader.backlog() >= budget {
            uploader.send_one(until)?;
        } else if read == 0 {
            return Ok(());
        }
    }
}

/// Uploads a whole log (`cairn sync`): every record, then the finish. `progress` follows
/// the bytes of the log read so far.
///
/// `live: Some(poll)` (`wandb beta sync --live`) is for a log still being written: the
/// upload reads on every `poll`, sending the filestream as it is due, until the log's
/// exit record arrives — or `until` ends (its deadline, its abort flag). A writer that dies
/// without an exit record keeps a live sync waiting, as with W&B's.
pub fn sync_log(
    log: &Path,
    settings: UploadSettings,
    until: &Until,
    progress: Arc<std::sync::atomic::AtomicU64>,
    live: Option<Duration>,
) -> Result<UploadReport, UploadError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut uploader = Uploader::new(settings, stop);
    let mut follower = LogFollower::new(log).with_progress(progress);
    let mut damage = UploadReport::default();
    drain(&mut uploader, &mut follower, &mut damage, until)?;
    if let Some(poll) = live {
        while !uploader.saw_exit() && until.sleep(poll) && !until.expired(Instant::now()) {
            if uploader.has_run() {
                uploader.pump(until)?;
            }
            drain(&mut uploader, &mut follower, &mut damage, until)?;
        }
    }
    if uploader.has_run() {
        uploader.generate_run_files();
    }
    let mut report = uploader.finish(until)?;
    report.damage = damage.damage;
    Ok(report)
}

/// What the pipeline tells a live upload.
#[derive(Debug)]
pub enum Control {
    /// The log is complete: send the rest and finish, giving up at `until`.
    Finish(Until),
}

/// Drives a live upload on the current thread (see the module docs) until it is told to
/// finish and has sent everything, or gives up. Polls the log every `poll`.
pub fn follow(
    log: &Path,
    settings: UploadSettings,
    stop: Arc<AtomicBool>,
    control: Receiver<Control>,
    poll: Duration,
    abort: Arc<AtomicBool>,
) -> Result<UploadReport, UploadError> {
    let mut uploader = Uploader::new(settings, stop);
    let mut follower = LogFollower::new(log);
    let mut damage = UploadReport::default();
    let live = Until {
        deadline: None,
        abort: Some(abort),
    };
    loop {
        let finish = match control.recv_timeout(poll) {
            Ok(Control::Finish(until)) => Some(until),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(live.clone()),
        };
        let until = finish.as_ref().unwrap_or(&live);
        drain(&mut uploader, &mut follower, &mut damage, until)?;
        if let Some(until) = finish {
            let mut report = uploader.finish(&until)?;
            report.damage = damage.damage;
            return Ok(report);
        }
        uploader.pump(&live)?;
    }
}
