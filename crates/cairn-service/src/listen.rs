//! Where the service listens and how the SDK learns it: a Unix socket in a private folder
//! (mode 0700) under `$TMPDIR`, TCP on `127.0.0.1:0` as well when asked, and the port file
//! the SDK polls for.
//!
//! The port file is written whole or not at all (a temporary file renamed into place): the
//! SDK reads `lines[-1] == "EOF"` without guarding against an empty file, so it must never
//! see one. Its form is one line per listener, `unix=PATH` first, then `sock=PORT`, then
//! `EOF` with no newline after it.
//!
//! [`Listeners::close`] (also on drop) removes the socket folder.

use std::fs;
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// A Unix socket path must fit `sockaddr_un.sun_path` (108 bytes with its NUL on Linux).
const SUN_PATH_MAX: usize = 107;

/// The service's open listeners.
#[derive(Debug)]
pub struct Listeners {
    /// The Unix socket.
    pub unix: UnixListener,
    /// Its path.
    pub unix_path: PathBuf,
    /// TCP on loopback, with `--listen-on-localhost`.
    pub tcp: Option<TcpListener>,
    dir: PathBuf,
}

impl Listeners {
    /// Opens the socket in a new private folder named for `pid_arg` (the SDK's pid) and
    /// this process, and TCP too when `tcp` is set.
    pub fn open(pid_arg: u32, tcp: bool) -> io::Result<Listeners> {
        let name = format!(
            "cairn-core-{pid_arg}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut dir = std::env::temp_dir().join(&name);
        if dir.join("socket").as_os_str().len() > SUN_PATH_MAX {
            // A long $TMPDIR (macOS-style) leaves no room for the socket's name.
            dir = PathBuf::from("/tmp").join(&name);
        }
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let unix_path = dir.join("socket");
        let unix = match UnixListener::bind(&unix_path) {
            Ok(listener) => listener,
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        let tcp = if tcp {
            Some(TcpListener::bind(("127.0.0.1", 0))?)
        } else {
            None
        };
        Ok(Listeners {
            unix,
            unix_path,
            tcp,
            dir,
        })
    }

    /// The port file's text.
    pub fn port_file_text(&self) -> io::Result<String> {
        let mut text = format!("unix={}\n", self.unix_path.display());
        if let Some(tcp) = &self.tcp {
            text.push_str(&format!("sock={}\n", tcp.local_addr()?.port()));
        }
        text.push_str("EOF");
        Ok(text)
    }

    /// Removes the socket folder.
    pub fn close(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.close();
    }
}

/// Writes `text` to `path` so that a reader sees either no file or all of it.
pub fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_file_names_every_listener_then_eof() {
        let listeners = Listeners::open(42, true).unwrap();
        let text = listeners.port_file_text().unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], format!("unix={}", listeners.unix_path.display()));
        assert!(
            lines[1]
                .strip_prefix("sock=")
                .unwrap()
                .parse::<u16>()
                .is_ok()
        );
        assert_eq!(lines[2], "EOF");
        let dir = listeners.unix_path.parent().unwrap().to_owned();
        let mode = fs::metadata(&dir).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
        drop(listeners);
        assert!(!dir.exists(), "the socket folder is removed");
    }

    #[test]
    fn port_files_appear_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("port-1.txt");
        write_atomically(&path, "unix=/x\nEOF").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "unix=/x\nEOF");
        write_atomically(&path, "unix=/y\nEOF").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "unix=/y\nEOF");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert!(write_atomically(&dir.path().join("missing/port"), "x").is_err());
    }
}
