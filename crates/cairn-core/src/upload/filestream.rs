//! The filestream's batching state: lines waiting to be sent, their offsets, and the JSON
//! body of the next request.
//!
//! Input: history, events and console lines, the latest summary, names of uploaded files,
//! the preempting flag and, at the end, the exit code. Output: request bodies of at most
//! `max_bytes` (one oversized line still goes alone), each W&B's
//! `{"files": {name: {"offset", "content"}}, "uploaded", "preempting", "complete",
//! "exitcode"}`. A body is taken with [`FileStream::next_body`] and its lines leave the
//! state only when [`FileStream::sent`] confirms it: a request that fails is built again,
//! with the same offsets, so retries and re-syncs can never duplicate a line on the server.
//!
//! Offsets are line numbers in the server's files, counted from the start of the run (or
//! from the resume point), so they follow from the log alone.

use std::time::{Duration, Instant};

use crate::value::write_string;

/// The server file names the filestream writes.
pub(crate) const HISTORY: &str = "wandb-history.jsonl";
/// System metrics.
pub(crate) const EVENTS: &str = "wandb-events.jsonl";
/// The summary (always line 0, replaced whole).
pub(crate) const SUMMARY: &str = "wandb-summary.json";
/// The console.
pub(crate) const CONSOLE: &str = "output.log";

/// A request body and what it carries, to confirm with [`FileStream::sent`].
#[derive(Debug)]
pub(crate) struct Body {
    /// The JSON text.
    pub(crate) json: Vec<u8>,
    history: usize,
    events: usize,
    console: usize,
    summary: bool,
    uploaded: usize,
    preempting: bool,
    complete: bool,
}

impl Body {
    /// Whether this body ends the stream (`complete`).
    pub(crate) fn is_final(&self) -> bool {
        self.complete
    }
}

/// Lines waiting for the server, with their offsets.
#[derive(Debug)]
pub(crate) struct FileStream {
    max_bytes: usize,
    history_offset: u64,
    events_offset: u64,
    console_offset: u64,
    history: Vec<String>,
    events: Vec<String>,
    console: Vec<String>,
    summary: Option<String>,
    uploaded: Vec<String>,
    preempting: bool,
    exit_code: Option<i32>,
    pending_bytes: usize,
    last_sent: Option<Instant>,
}

impl FileStream {
    /// An empty stream whose files start at the given line offsets.
    pub(crate) fn new(max_bytes: usize, history: u64, events: u64, console: u64) -> FileStream {
        FileStream {
            max_bytes: max_bytes.max(1024),
            history_offset: history,
            events_offset: events,
            console_offset: console,
            history: Vec::new(),
            events: Vec::new(),
            console: Vec::new(),
            summary: None,
            uploaded: Vec::new(),
            preempting: false,
            exit_code: None,
            pending_bytes: 0,
            last_sent: None,
        }
    }

    /// Queues a history line.
    pub(crate) fn push_history(&mut self, line: String) {
        self.pending_bytes += line.len();
        self.history.push(line);
    }

    /// Queues a system-metrics line.
    pub(crate) fn push_events(&mut self, line: String) {
        self.pending_bytes += line.len();
        self.events.push(line);
    }

    /// Queues a console line.
    pub(crate) fn push_console(&mut self, line: String) {
        self.pending_bytes += line.len();
        self.console.push(line);
    }

    /// Replaces the summary to send.
    pub(crate) fn set_summary(&mut self, summary: String) {
        self.summary = Some(summary);
    }

    /// Reports a run file as uploaded.
    pub(crate) fn push_uploaded(&mut self, name: String) {
        self.uploaded.push(name);
    }

    /// Asks for the preempting flag on the next request (sent at once).
    pub(crate) fn set_preempting(&mut self) {
        self.preempting = true;
    }

    /// Ends the stream: the last body carries `complete` and `exit_code`.
    pub(crate) fn set_exit(&mut self, exit_code: i32) {
        self.exit_code = Some(exit_code);
    }

    /// Bytes of lines waiting.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether anything waits to be sent.
    pub(crate) fn has_pending(&self) -> bool {
        !self.history.is_empty()
            || !self.events.is_empty()
            || !self.console.is_empty()
            || self.summary.is_some()
            || !self.uploaded.is_empty()
            || self.preempting
            || self.exit_code.is_some()
    }

    /// Whether a request should go now: the first one at once, then one per `interval`,
    /// earlier when a full body is waiting or the run is being preempted.
    pub(crate) fn due(&self, now: Instant, interval: Duration) -> bool {
        if !self.has_pending() {
            return false;
        }
        self.preempting
            || self.pending_bytes >= self.max_bytes
            || self
                .last_sent
                .is_none_or(|last| now.duration_since(last) >= interval)
    }

    /// Whether the stream has been quiet for `period` (time for a heartbeat `{}`).
    pub(crate) fn idle_for(&self, now: Instant, period: Duration) -> bool {
        self.last_sent
            .is_some_and(|last| now.duration_since(last) >= period)
    }

    /// Notes that a heartbeat went out.
    pub(crate) fn heartbeat_sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
    }

    /// The next request body: history lines first, then events, summary, console,
    /// uploaded names and flags, within `max_bytes` (the first line always fits). `final`
    /// ends the stream with `complete` when everything else fits in this body too.
    pub(crate) fn next_body(&self) -> Option<Body> {
        if !self.has_pending() {
            return None;
        }
        let mut budget = self.max_bytes;
        let take = |lines: &[String], budget: &mut usize, first: &mut bool| -> usize {
            let mut n = 0;
            for line in lines {
                let cost = line.len() + 3;
                if cost > *budget && !*first {
                    break;
                }
                *budget = budget.saturating_sub(cost);
                *first = false;
                n += 1;
            }
            n
        };
        let mut first = true;
        let history = take(&self.history, &mut budget, &mut first);
        let events = if history == self.history.len() {
            take(&self.events, &mut budget, &mut first)
        } else {
            0
        };
        let summary = self
            .summary
            .as_ref()
            .is_some_and(|s| first || s.len() + 3 <= budget);
        if summary && let Some(s) = &self.summary {
            budget = budget.saturating_sub(s.len() + 3);
            first = false;
        }
        let console = if history == self.history.len() && events == self.events.len() {
            take(&self.console, &mut budget, &mut first)
        } else {
            0
        };
        let all_lines = history == self.history.len()
            && events == self.events.len()
            && console == self.console.len()
            && (self.summary.is_none() || summary);
        let complete = all_lines && self.exit_code.is_some();

        let mut json = String::with_capacity(self.max_bytes.min(self.pending_bytes + 256));
        json.push_str("{\"files\":{");
        let mut files = 0;
        let mut file = |name: &str, offset: u64, lines: &[String], json: &mut String| {
            if lines.is_empty() {
                return;
            }
            if files > 0 {
                json.push(',');
            }
            files += 1;
            write_string(name, json);
            json.push_str(":{\"offset\":");
            json.push_str(itoa::Buffer::new().format(offset));
            json.push_str(",\"content\":[");
            for (i, line) in lines.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                write_string(line, json);
            }
            json.push_str("]}");
        };
        file(
            HISTORY,
            self.history_offset,
            &self.history[..history],
            &mut json,
        );
        file(
            EVENTS,
            self.events_offset,
            &self.events[..events],
            &mut json,
        );
        if summary && let Some(s) = &self.summary {
            file(SUMMARY, 0, std::slice::from_ref(s), &mut json);
        }
        file(
            CONSOLE,
            self.console_offset,
            &self.console[..console],
            &mut json,
        );
        json.push('}');
        let uploaded = if all_lines { self.uploaded.len() } else { 0 };
        if uploaded > 0 {
            json.push_str(",\"uploaded\":[");
            for (i, name) in self.uploaded.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                write_string(name, &mut json);
            }
            json.push(']');
        }
        if self.preempting {
            json.push_str(",\"preempting\":true");
        }
        if complete && let Some(code) = self.exit_code {
            json.push_str(",\"complete\":true,\"exitcode\":");
            json.push_str(itoa::Buffer::new().format(code));
        }
        json.push('}');
        Some(Body {
            json: json.into_bytes(),
            history,
            events,
            console,
            summary,
            uploaded,
            preempting: self.preempting,
            complete,
        })
    }

    /// Confirms that `body` reached the server: its lines leave, offsets advance.
    pub(crate) fn sent(&mut self, body: &Body, now: Instant) {
        let gone: usize = self.history[..body.history]
            .iter()
            .chain(&self.events[..body.events])
            .chain(&self.console[..body.console])
            .map(String::len)
            .sum();
        self.pending_bytes -= gone;
        self.history.drain(..body.history);
        self.events.drain(..body.events);
        self.console.drain(..body.console);
        self.history_offset += body.history as u64;
        self.events_offset += body.events as u64;
        self.console_offset += body.console as u64;
        if body.summary {
            self.summary = None;
        }
        self.uploaded.drain(..body.uploaded);
        if body.preempting {
            self.preempting = false;
        }
        if body.complete {
            self.exit_code = None;
        }
        self.last_sent = Some(now);
    }

    /// The offsets of the next lines: history, events, console.
    pub(crate) fn offsets(&self) -> (u64, u64, u64) {
        (self.history_offset, self.events_offset, self.console_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &Body) -> serde_json::Value {
        serde_json::from_slice(&body.json).unwrap()
    }

    #[test]
    fn bodies_carry_offsets_and_confirmation_advances_them() {
        let mut fs = FileStream::new(1 << 20, 0, 0, 0);
        for i in 0..3 {
            fs.push_history(format!("{{\"_step\":{i}}}"));
        }
        fs.push_console("2026-01-01T00:00:00.000000 hi".to_owned());
        fs.set_summary("{\"loss\":1}".to_owned());
        let body = fs.next_body().unwrap();
        let v = parse(&body);
        assert_eq!(v["files"][HISTORY]["offset"], 0);
        assert_eq!(v["files"][HISTORY]["content"].as_array().unwrap().len(), 3);
        assert_eq!(v["files"][SUMMARY]["offset"], 0);
        assert_eq!(v["files"][CONSOLE]["offset"], 0);
        // Not confirmed: the same body again (a retry sends the same offsets).
        assert_eq!(fs.next_body().unwrap().json, body.json);
        fs.sent(&body, Instant::now());
        assert!(!fs.has_pending());
        fs.push_history("{\"_step\":3}".to_owned());
        let v = parse(&fs.next_body().unwrap());
        assert_eq!(v["files"][HISTORY]["offset"], 3);
        assert!(v["files"].get(SUMMARY).is_none());
    }

    #[test]
    fn large_backlogs_split_by_bytes_and_complete_comes_last() {
        let mut fs = FileStream::new(1024, 10, 0, 0);
        for i in 0..100 {
            fs.push_history(format!("{{\"_step\":{i},\"pad\":\"{}\"}}", "x".repeat(40)));
        }
        fs.set_exit(0);
        let mut steps = Vec::new();
        let mut finals = 0;
        while let Some(body) = fs.next_body() {
            let v = parse(&body);
            assert!(body.json.len() < 2048);
            if let Some(h) = v["files"].get(HISTORY) {
                let offset = h["offset"].as_u64().unwrap();
                assert_eq!(offset, 10 + steps.len() as u64);
                steps.extend(h["content"].as_array().unwrap().iter().cloned());
            }
            if v.get("complete").is_some() {
                finals += 1;
                assert_eq!(v["exitcode"], 0);
            }
            fs.sent(&body, Instant::now());
        }
        assert_eq!(steps.len(), 100);
        assert_eq!(finals, 1);
    }

    #[test]
    fn one_oversized_line_still_goes() {
        let mut fs = FileStream::new(1024, 0, 0, 0);
        fs.push_history("y".repeat(5000));
        fs.push_history("{}".to_owned());
        let body = fs.next_body().unwrap();
        assert_eq!(body.history, 1);
        fs.sent(&body, Instant::now());
        assert_eq!(fs.next_body().unwrap().history, 1);
    }

    #[test]
    fn due_after_the_interval_or_when_full() {
        let mut fs = FileStream::new(1024, 0, 0, 0);
        let now = Instant::now();
        assert!(!fs.due(now, Duration::from_secs(15)));
        fs.push_events("{}".to_owned());
        assert!(
            fs.due(now, Duration::from_secs(15)),
            "the first request goes at once"
        );
        let body = fs.next_body().unwrap();
        fs.sent(&body, now);
        fs.push_events("{}".to_owned());
        assert!(!fs.due(now, Duration::from_secs(15)));
        assert!(fs.due(now + Duration::from_secs(15), Duration::from_secs(15)));
        fs.push_history("z".repeat(2000));
        assert!(
            fs.due(now, Duration::from_secs(15)),
            "a full body goes at once"
        );
    }
}
