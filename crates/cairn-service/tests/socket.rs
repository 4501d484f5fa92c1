//! The service over a real socket, as the SDK reaches it: the port file, framing, answers by
//! request id, a broken connection closed alone, and teardown.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cairn_proto::server_request::ServerRequestType;
use cairn_proto::server_response::ServerResponseType;
use cairn_proto::{Record, ServerInformTeardownRequest, ServerRequest, ServerResponse};
use cairn_service::launch::Flags;
use cairn_service::{Outcome, Reporter, ServiceEvent, frame, serve};
use prost::Message as _;

#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl Reporter for Events {
    fn report(&self, event: ServiceEvent) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
}

fn port_file_socket(path: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<&str> = text.split('\n').collect();
            assert_eq!(
                lines.last(),
                Some(&"EOF"),
                "port file seen incomplete: {text:?}"
            );
            return PathBuf::from(lines[0].strip_prefix("unix=").expect("unix= line first"));
        }
        assert!(
            Instant::now() < deadline,
            "no port file at {}",
            path.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn request(id: &str, kind: ServerRequestType) -> Vec<u8> {
    frame::encode(&ServerRequest {
        request_id: id.to_owned(),
        server_request_type: Some(kind),
    })
}

fn read_response(stream: &mut UnixStream) -> ServerResponse {
    let payload = frame::read_frame(stream).unwrap().expect("a response");
    ServerResponse::decode(payload.as_slice()).unwrap()
}

#[test]
fn requests_are_answered_by_id_and_teardown_ends_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port-1.txt");
    let flags = Flags {
        port_filename: Some(port_file.clone()),
        detached: true,
        ..Flags::default()
    };
    let events = Arc::new(Events::default());
    let reporter: Arc<dyn Reporter> = events.clone();
    let service = thread::spawn(move || serve(&flags, reporter));
    let socket = port_file_socket(&port_file);

    // A request the service cannot answer yet gets an error naming its kind, by id.
    let mut sdk = UnixStream::connect(&socket).unwrap();
    sdk.write_all(&request(
        "r1",
        ServerRequestType::RecordPublish(Record::default()),
    ))
    .unwrap();
    let answer = read_response(&mut sdk);
    assert_eq!(answer.request_id, "r1");
    match answer.server_response_type {
        Some(ServerResponseType::ErrorResponse(e)) => {
            assert_eq!(e.message, "cairn core does not support record_publish yet");
        }
        other => panic!("expected an error response, got {other:?}"),
    }
    // Without an id nothing is answered: the next answer is for r2.
    sdk.write_all(&request(
        "",
        ServerRequestType::RecordPublish(Record::default()),
    ))
    .unwrap();
    sdk.write_all(&request(
        "r2",
        ServerRequestType::RecordPublish(Record::default()),
    ))
    .unwrap();
    assert_eq!(read_response(&mut sdk).request_id, "r2");

    // A connection that sends garbage is closed; the service and other connections live on.
    let mut broken = UnixStream::connect(&socket).unwrap();
    broken.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    // Closed: the end of the stream, or a reset when the service left bytes unread.
    match frame::read_frame(&mut broken) {
        Ok(None) | Err(frame::FrameError::Io(_)) => {}
        other => panic!("the broken connection should be closed, got {other:?}"),
    }
    let mut other = UnixStream::connect(&socket).unwrap();
    other
        .write_all(&request(
            "r3",
            ServerRequestType::RecordPublish(Record::default()),
        ))
        .unwrap();
    assert_eq!(read_response(&mut other).request_id, "r3");

    // Teardown ends the service and removes its socket.
    sdk.write_all(&request(
        "",
        ServerRequestType::InformTeardown(ServerInformTeardownRequest {
            exit_code: 7,
            ..Default::default()
        }),
    ))
    .unwrap();
    let outcome = service.join().unwrap().unwrap();
    assert_eq!(outcome, Outcome::TornDown { exit_code: 7 });
    assert!(!socket.exists(), "socket removed");
    let events = events.0.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.contains("bad frame header: byte 0x47")),
        "the broken connection's reason is reported: {events:?}"
    );
}

#[test]
fn a_parent_that_is_not_the_pid_argument_ends_the_service_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let flags = Flags {
        port_filename: Some(dir.path().join("port")),
        pid: Some(std::process::id() + 100_000),
        ..Flags::default()
    };
    let outcome = serve(&flags, Arc::new(Events::default())).unwrap();
    assert_eq!(outcome, Outcome::NotMyParent);
    assert!(!dir.path().join("port").exists());
}

#[test]
fn detached_services_end_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let flags = Flags {
        port_filename: Some(dir.path().join("port")),
        detached: true,
        idle_timeout: Some(Duration::from_millis(300)),
        ..Flags::default()
    };
    let started = Instant::now();
    let outcome = serve(&flags, Arc::new(Events::default())).unwrap();
    assert_eq!(outcome, Outcome::Idle);
    assert!(started.elapsed() >= Duration::from_millis(300));
}
