//! A socket reader that stays awake while the SDK is writing fast, and sleeps otherwise.
//!
//! Why: the SDK's `run.log` hands each record from the user's thread to its asyncio
//! thread and waits for it to be written — a round trip between two Python threads per
//! call. When the machine's other CPUs are idle, every leg of that round trip wakes a
//! sleeping CPU, and on a virtual machine with few CPUs a wake-up costs tens of
//! microseconds. W&B's core (Go) keeps its threads spinning for a while after work, so
//! the SDK's threads find a CPU awake; a core whose reader blocks in `read` after every
//! frame leaves the CPU idle and makes each small `run.log` call slower, even though it
//! does less work.
//!
//! [`SpinReader`] reads without blocking (`recv` with `MSG_DONTWAIT`, which leaves the
//! socket's shared `O_NONBLOCK` flag — and so the answering half — alone) and, when
//! nothing has arrived, keeps looking for a while before it blocks:
//! - always for [`SHORT_SPIN`], which catches the rest of a frame the SDK wrote in two
//!   pieces (header, then payload);
//! - for [`LONG_SPIN`] when the previous frame came soon after the reader had to block
//!   (the SDK is calling at a high rate, so the next frame is likely to come soon too).
//!   [`MISSES`] long spins in a row that run out turn it off again, so a script that
//!   logs every few milliseconds — or a quiet connection — costs almost no spinning;
//! - for [`LONG_SPIN`] once every [`PROBE_EVERY`] reads while it is not spinning long,
//!   to find out whether the SDK is in fact calling fast: while the reader blocks, every
//!   frame also pays the idle CPU's wake-up, which can stretch a fast caller's intervals
//!   past the long spin so that the rule above never sees it (measured: a 10-metric
//!   tight loop settled at 204 µs per call instead of 75 in one run of two). A probe that
//!   catches its frame turns the long spin on.
//!
//! `CAIRN_CORE_SPIN_US` sets the long spin in microseconds (0: never spin long): more
//! buys lower `run.log` latency for scripts that log larger rows in tight loops, paid in
//! core CPU; see BENCHMARKS.md.
//!
//! Inputs: the socket; outputs: its bytes, the end of the stream and errors as the socket
//! gives them. Nothing to shut down: the reader ends with its socket.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::{RecvFlags, recv};

/// How long the reader always keeps looking before it blocks.
pub const SHORT_SPIN: Duration = Duration::from_micros(20);
/// How long it keeps looking while the SDK is writing at a high rate (a few times a
/// small `run.log` call's time).
pub const LONG_SPIN: Duration = Duration::from_micros(150);
/// While not spinning long, one read in this many spins long anyway (a probe): at most
/// [`LONG_SPIN`] of CPU per this many frames on a slow connection.
pub const PROBE_EVERY: u32 = 32;
/// Long spins in a row that must run out before the reader stops spinning long: one
/// late frame (a garbage collection in the SDK, a checkpoint) does not end a fast run.
pub const MISSES: u32 = 4;

/// A `Read` over a socket that spins briefly before blocking (module doc).
#[derive(Debug)]
pub struct SpinReader<S> {
    inner: S,
    short: Duration,
    long: Duration,
    /// Whether the next wait spins for `long` (else `short`).
    busy: bool,
    /// Long spins in a row that ran out (see [`MISSES`]).
    misses: u32,
    /// Reads since the last long spin while not busy (see [`PROBE_EVERY`]).
    since_probe: u32,
}

impl<S> SpinReader<S> {
    /// Reads `inner` with [`SHORT_SPIN`] and [`LONG_SPIN`] (or `CAIRN_CORE_SPIN_US`).
    pub fn new(inner: S) -> Self {
        let long = std::env::var("CAIRN_CORE_SPIN_US")
            .ok()
            .and_then(|us| us.trim().parse().ok())
            .map_or(LONG_SPIN, Duration::from_micros);
        Self::with(inner, SHORT_SPIN.min(long), long)
    }

    /// Reads `inner`, spinning `short` before every block and `long` while the peer is
    /// writing at a high rate. Zero durations never spin.
    pub fn with(inner: S, short: Duration, long: Duration) -> Self {
        Self {
            inner,
            short,
            long,
            busy: false,
            misses: 0,
            since_probe: 0,
        }
    }
}

impl<S: Read + AsFd> SpinReader<S> {
    /// One look without blocking: `Some` with what `recv` gave, `None` when nothing is there.
    fn look(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        loop {
            return match recv(self.inner.as_fd(), &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => Some(Ok(n)),
                Err(Errno::AGAIN) => None,
                Err(Errno::INTR) => continue,
                Err(err) => Some(Err(err.into())),
            };
        }
    }
}

impl<S: Read + AsFd> Read for SpinReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let probe = !self.busy && self.since_probe + 1 >= PROBE_EVERY;
        self.since_probe = if self.busy || probe {
            0
        } else {
            self.since_probe + 1
        };
        let long = self.busy || probe;
        let spin = if long { self.long } else { self.short };
        loop {
            if let Some(got) = self.look(buf) {
                if long && !self.long.is_zero() {
                    // Caught while spinning long: the SDK is calling fast.
                    self.busy = true;
                    self.misses = 0;
                }
                return got;
            }
            if started.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        let n = self.inner.read(buf)?;
        if started.elapsed() < self.long {
            // Data soon after giving up a short spin: the SDK is calling fast.
            self.busy = true;
            self.misses = 0;
        } else if self.busy {
            // A long spin ran out; a few in a row: the SDK is not calling fast any more.
            self.misses += 1;
            if self.misses >= MISSES {
                self.busy = false;
                self.misses = 0;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reads_everything_then_the_end_with_and_without_spinning() {
        for spin in [Duration::ZERO, Duration::from_micros(200)] {
            let (mut a, b) = UnixStream::pair().unwrap();
            let mut reader = SpinReader::with(b, spin, spin * 5);
            let writer = std::thread::spawn(move || {
                for i in 0..300u32 {
                    a.write_all(&i.to_le_bytes()).unwrap();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            });
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            writer.join().unwrap();
            let want: Vec<u8> = (0..300u32).flat_map(u32::to_le_bytes).collect();
            assert_eq!(got, want, "spin {spin:?}");
        }
    }

    #[test]
    fn spins_long_only_while_the_peer_writes_fast() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut reader = SpinReader::with(b, Duration::ZERO, Duration::from_millis(50));
        let mut one = [0u8; 1];
        let late = |mut a: UnixStream, after: Duration| {
            std::thread::spawn(move || {
                std::thread::sleep(after);
                a.write_all(b"x").unwrap();
                a
            })
        };
        // A frame 100 ms after the reader blocked: not busy.
        let w = late(a, Duration::from_millis(100));
        reader.read_exact(&mut one).unwrap();
        a = w.join().unwrap();
        assert!(!reader.busy);
        // One soon after: busy, the next wait spins.
        let w = late(a, Duration::from_millis(1));
        reader.read_exact(&mut one).unwrap();
        a = w.join().unwrap();
        assert!(reader.busy);
        // The peer goes quiet: one long wait does not end the long spin, a few do.
        for n in 1..=MISSES {
            let w = late(a, Duration::from_millis(150));
            reader.read_exact(&mut one).unwrap();
            a = w.join().unwrap();
            assert_eq!(reader.busy, n < MISSES, "after {n} long waits");
        }
        drop(a);
        assert_eq!(reader.read(&mut one).unwrap(), 0, "end of stream");
    }

    #[test]
    fn probes_with_a_long_spin_every_so_often_while_not_busy() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut reader = SpinReader::with(b, Duration::ZERO, Duration::from_millis(5));
        a.write_all(&[7u8; PROBE_EVERY as usize]).unwrap();
        let mut one = [0u8; 1];
        for _ in 1..PROBE_EVERY {
            reader.read_exact(&mut one).unwrap();
            assert!(
                !reader.busy,
                "reads that found data waiting are not a probe"
            );
        }
        // The next read is a probe; it finds its byte, so the reader spins long from now on.
        reader.read_exact(&mut one).unwrap();
        assert!(reader.busy);
        assert_eq!(reader.since_probe, 0);
    }
}
