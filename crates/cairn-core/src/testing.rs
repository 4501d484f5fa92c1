//! Test support (feature `test-support`, and this crate's own tests): a fake W&B server.
//!
//! [`FakeServer`] listens on `127.0.0.1:<free port>`, reads one HTTP/1.1 request per
//! connection, answers it with what the test's function returns and hangs up: a status
//! and a JSON body ([`FakeServer::start`]), or any bytes, built with [`http_answer`]
//! ([`FakeServer::start_raw`], for tests of the client's handling of statuses and
//! headers). GraphQL
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
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (as sent: gzipped bodies stay gzipped).
    pub body: Vec<u8>,
}

impl FakeRequest {
    /// The first header of this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

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
        FakeServer::start_raw(move |_, request| {
            let (status, body) = reply(request);
            http_answer(status, &[("Content-Type", "application/json")], &body)
        })
    }

    /// Starts the server; `reply` gives the whole answer to the `n`th request (from 0),
    /// e.g. [`http_answer`].
    pub fn start_raw(
        mut reply: impl FnMut(usize, &FakeRequest) -> Vec<u8> + Send + 'static,
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
                            if let Some(request) = serve(stream, seen.len(), &mut reply) {
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

/// An HTTP/1.1 answer: the status, the headers given, the body's length, and
/// `Connection: close`.
pub fn http_answer(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status} Fake\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// Reads the `n`th request from `stream` and answers it.
fn serve(
    mut stream: TcpStream,
    n: usize,
    reply: &mut impl FnMut(usize, &FakeRequest) -> Vec<u8>,
) -> Option<FakeRequest> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request = FakeRequest {
        line: line.trim_end().to_owned(),
        headers,
        body: Vec::new(),
    };
    let length: usize = request
        .header("content-length")
        .map_or(Ok(0), str::parse)
        .ok()?;
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    let answer = reply(n, &request);
    let _ = stream.write_all(&answer);
    let _ = stream.flush();
    Some(request)
}
