//! Test support (feature `test-support`, and this crate's own tests): a fake W&B server.
//!
//! [`FakeServer`] listens on `127.0.0.1:<free port>`, reads one HTTP/1.1 request per
//! connection, answers it with what the test's function returns and hangs up. GraphQL
//! requests are named by their `operationName`, so a test answers `RunResumeStatus` one
//! way and everything else another; [`FakeServer::wandb`] is the usual such server. It
//! stops when [`FakeServer::finish`] is called (it
//! returns the requests it saw), or after 60 s, so a broken test cannot hang the suite.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
pub struct FakeRequest {
    /// `POST /graphql HTTP/1.1`.
    pub line: String,
    /// The body (as sent: gzipped bodies stay gzipped).
    pub body: Vec<u8>,
}

impl FakeRequest {
    /// The GraphQL operation's name, for a GraphQL request.
    pub fn operation(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body["operationName"].as_str().map(str::to_owned)
    }
}

/// A fake server on 127.0.0.1 (see the module docs).
#[derive(Debug)]
pub struct FakeServer {
    base_url: String,
    /// Raised by `finish`; the accept loop ends at its next look.
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<FakeRequest>>,
}

impl FakeServer {
    /// Starts the server; `reply` gives each request's status and JSON body.
    pub fn start(
        mut reply: impl FnMut(&FakeRequest) -> (u16, String) + Send + 'static,
    ) -> std::io::Result<FakeServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("cairn-fake-server".into())
            .spawn(move || {
                let started = Instant::now();
                let mut seen = Vec::new();
                while !stopped.load(Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(60)
                {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(request) = serve(stream, &mut reply) {
                                seen.push(request);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => break,
                    }
                }
                seen
            })?;
        Ok(FakeServer {
            base_url,
            stop,
            handle,
        })
    }

    /// A W&B server that holds one run, `bucket` (what `RunResumeStatus` answers; `None`:
    /// no such run), and accepts an upload: `UpsertBucket` answers the run it names in
    /// entity `e`, other GraphQL operations empty data, other requests `{}`.
    pub fn wandb(bucket: Option<serde_json::Value>) -> std::io::Result<FakeServer> {
        use serde_json::json;
        FakeServer::start(move |request| {
            let data = match request.operation().as_deref() {
                Some("RunResumeStatus") => json!({"model": {"bucket": bucket}}),
                Some("UpsertBucket") => {
                    let body: serde_json::Value =
                        serde_json::from_slice(&request.body).unwrap_or_default();
                    let variables = &body["variables"];
                    json!({"upsertBucket": {"inserted": true, "bucket": {
                        "id": "UnVuOjE=", "name": variables["name"],
                        "project": {"name": variables["project"], "entity": {"name": "e"}}
                    }}})
                }
                Some(_) => json!({}),
                None => return (200, "{}".to_owned()),
            };
            (200, json!({ "data": data }).to_string())
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops the server; the requests it saw, in order.
    pub fn finish(self) -> Vec<FakeRequest> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// Reads one request from `stream` and answers it.
fn serve(
    mut stream: TcpStream,
    reply: &mut impl FnMut(&FakeRequest) -> (u16, String),
) -> Option<FakeRequest> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let request = FakeRequest {
        line: line.trim_end().to_owned(),
        body,
    };
    let (status, body) = reply(&request);
    let answer = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
    Some(request)
}
