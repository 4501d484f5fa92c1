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
//!   A wait longer than that turns the long spin off again, so a script that logs
//!   every few milliseconds — or a quiet connection — costs no spinning at all.
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

/// A `Read` over a socket that spins briefly before blocking (module doc).
#[derive(Debug)]
pub struct SpinReader<S> {
    inner: S,
    short: Duration,
    long: Duration,
    /// Whether the next wait spins for `long` (else `short`).
    busy: bool,
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
        let spin = if self.busy { self.long } else { self.short };
        loop {
            if let Some(got) = self.look(buf) {
                return got;
            }
            if started.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        let n = self.inner.read(buf)?;
        // Data soon after giving up: the SDK is calling fast, spin longer next time; a
        // long wait: it is not, stop spinning long.
        self.busy = started.elapsed() < self.long;
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
        // The peer goes quiet: after one spin and a long wait, not busy any more.
        let w = late(a, Duration::from_millis(200));
        reader.read_exact(&mut one).unwrap();
        drop(w.join().unwrap());
        assert!(!reader.busy);
        assert_eq!(reader.read(&mut one).unwrap(), 0, "end of stream");
    }
}
