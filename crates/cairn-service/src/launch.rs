//! The command line `wandb-core` is started with, parsed the way its Go flag parser reads
//! it: `-flag` and `--flag` alike, values as the next argument or after `=`, and flags this
//! service does not know skipped rather than refused (a newer SDK may pass new ones).
//!
//! Input: the arguments after the program name. Output: [`Flags`], or a [`LaunchError`]
//! naming the flag whose value is missing or malformed. Pure; nothing to shut down.

use std::path::PathBuf;
use std::time::Duration;

/// What the SDK asked of the core at launch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// Where to write the port file (`--port-filename`).
    pub port_filename: Option<PathBuf>,
    /// The pid that must be this process's parent (`--pid`).
    pub pid: Option<u32>,
    /// Also listen on TCP `127.0.0.1:0` (`--listen-on-localhost`).
    pub listen_on_localhost: bool,
    /// Started by `wandb beta core start`: no parent check (`--detached`).
    pub detached: bool,
    /// With `--detached`: exit after this long without a connection; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// `--log-level`: −4 debug, 0 info, 4 warn, 8 error (Go's slog levels).
    pub log_level: i32,
    /// Flags accepted and ignored (`--no-observability`, unknown ones), for the log.
    pub ignored: Vec<String>,
}

/// A launch argument that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchError {
    /// A flag that takes a value came last.
    #[error("flag --{0} needs a value")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("flag --{flag}: {value:?} is not {expected}")]
    BadValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
}

/// Flags that take a value; every other known flag is a switch.
const WITH_VALUE: [&str; 4] = ["port-filename", "pid", "log-level", "idle-timeout"];
/// Switches `wandb-core` knows that this service has no use for.
const IGNORED_SWITCHES: [&str; 3] = [
    "no-observability",
    "enable-dcgm-profiling",
    "os-pid-shutdown",
];

/// Parses `wandb-core`'s arguments (see the module doc).
pub fn parse<I, S>(args: I) -> Result<Flags, LaunchError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut flags = Flags::default();
    let mut args = args.into_iter().map(Into::into).peekable();
    while let Some(arg) = args.next() {
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            flags.ignored.push(arg);
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (body.to_owned(), None),
        };
        let value = if WITH_VALUE.contains(&name.as_str()) {
            match inline {
                Some(v) => Some(v),
                None => Some(
                    args.next()
                        .ok_or_else(|| LaunchError::MissingValue(name.clone()))?,
                ),
            }
        } else {
            inline
        };
        let bad = |value: &str, expected| LaunchError::BadValue {
            flag: name.clone(),
            value: value.to_owned(),
            expected,
        };
        match (name.as_str(), value.as_deref()) {
            ("port-filename", Some(v)) => flags.port_filename = Some(PathBuf::from(v)),
            ("pid", Some(v)) => {
                flags.pid = Some(v.parse().map_err(|_| bad(v, "a process id"))?);
            }
            ("log-level", Some(v)) => {
                flags.log_level = v.parse().map_err(|_| bad(v, "an integer level"))?;
            }
            ("idle-timeout", Some(v)) => {
                let d = go_duration(v).ok_or_else(|| bad(v, "a duration like 10m or 30s"))?;
                flags.idle_timeout = (!d.is_zero()).then_some(d);
            }
            ("listen-on-localhost", v) => flags.listen_on_localhost = switch(v),
            ("detached", v) => flags.detached = switch(v),
            (known, _) if IGNORED_SWITCHES.contains(&known) => flags.ignored.push(arg),
            _ => {
                // An unknown flag: its value, if it has one, cannot be told from the next
                // flag's name; Go would fail here, a replacement must not.
                flags.ignored.push(arg);
            }
        }
    }
    Ok(flags)
}

/// A boolean switch's value: bare means true, `=false` / `=0` false.
fn switch(value: Option<&str>) -> bool {
    !matches!(value, Some("false" | "0" | "f" | "F" | "FALSE" | "False"))
}

/// A Go `time.Duration` string: `0`, or numbers with units `ns us µs ms s m h`, e.g.
/// `1h30m`, `2.5s`, `500ms`.
pub fn go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdks_launch_lines_parse() {
        let flags = parse([
            "--no-observability",
            "--port-filename",
            "/tmp/x/port-7.txt",
            "--pid",
            "7",
        ])
        .unwrap();
        assert_eq!(
            flags.port_filename,
            Some(PathBuf::from("/tmp/x/port-7.txt"))
        );
        assert_eq!(flags.pid, Some(7));
        assert!(!flags.detached && !flags.listen_on_localhost);
        assert_eq!(flags.ignored, ["--no-observability"]);

        let flags = parse([
            "-pid=5",
            "--log-level",
            "-4",
            "--listen-on-localhost",
            "--detached",
            "--idle-timeout",
            "10m",
            "--future-flag",
            "--port-filename=/p",
        ])
        .unwrap();
        assert_eq!(flags.pid, Some(5));
        assert_eq!(flags.log_level, -4);
        assert!(flags.listen_on_localhost && flags.detached);
        assert_eq!(flags.idle_timeout, Some(Duration::from_secs(600)));
        assert_eq!(flags.ignored, ["--future-flag"]);
        assert_eq!(flags.port_filename, Some(PathBuf::from("/p")));
    }

    #[test]
    fn bad_values_name_their_flag() {
        assert_eq!(
            parse(["--pid"]).unwrap_err(),
            LaunchError::MissingValue("pid".into())
        );
        let err = parse(["--pid", "abc"]).unwrap_err();
        assert_eq!(err.to_string(), "flag --pid: \"abc\" is not a process id");
        assert!(parse(["--idle-timeout", "ten"]).is_err());
        assert_eq!(parse(["--idle-timeout", "0"]).unwrap().idle_timeout, None);
    }

    #[test]
    fn go_durations() {
        for (text, secs) in [
            ("0", 0.0),
            ("30s", 30.0),
            ("10m", 600.0),
            ("1h30m", 5400.0),
            ("500ms", 0.5),
            ("2.5s", 2.5),
            ("1m0.5s", 60.5),
        ] {
            assert_eq!(
                go_duration(text),
                Some(Duration::from_secs_f64(secs)),
                "{text}"
            );
        }
        for bad in ["", "10", "s", "10x", "-1s", "1..2s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }
}
