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
use cairn_proto::{ServerInformTeardownRequest, ServerRequest, ServerResponse};
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
        ServerRequestType::Authenticate(Default::default()),
    ))
    .unwrap();
    let answer = read_response(&mut sdk);
    assert_eq!(answer.request_id, "r1");
    match answer.server_response_type {
        Some(ServerResponseType::ErrorResponse(e)) => {
            assert_eq!(e.message, "cairn core does not support authenticate yet");
        }
        other => panic!("expected an error response, got {other:?}"),
    }
    // Without an id nothing is answered: the next answer is for r2.
    sdk.write_all(&request(
        "",
        ServerRequestType::Authenticate(Default::default()),
    ))
    .unwrap();
    sdk.write_all(&request(
        "r2",
        ServerRequestType::Authenticate(Default::default()),
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
            ServerRequestType::Authenticate(Default::default()),
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

/// One frame out, the answer with the same id back (answers to other ids are skipped).
fn ask(stream: &mut UnixStream, id: &str, kind: ServerRequestType) -> ServerResponse {
    stream.write_all(&request(id, kind)).unwrap();
    loop {
        let answer = read_response(stream);
        if answer.request_id == id {
            return answer;
        }
    }
}

fn record(run: &str, kind: cairn_proto::record::RecordType) -> ServerRequestType {
    ServerRequestType::RecordPublish(cairn_proto::Record {
        record_type: Some(kind),
        info: Some(cairn_proto::RecordInfo {
            stream_id: run.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn sdk_request(run: &str, kind: cairn_proto::request::RequestType) -> ServerRequestType {
    record(
        run,
        cairn_proto::record::RecordType::Request(cairn_proto::Request {
            request_type: Some(kind),
        }),
    )
}

fn result_of(answer: ServerResponse) -> cairn_proto::result::ResultType {
    match answer.server_response_type {
        Some(ServerResponseType::ResultCommunicate(r)) => r.result_type.expect("a result"),
        other => panic!("expected a result, got {other:?}"),
    }
}

fn response_of(answer: ServerResponse) -> Option<cairn_proto::response::ResponseType> {
    match result_of(answer) {
        cairn_proto::result::ResultType::Response(r) => r.response_type,
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn an_offline_run_goes_from_init_to_a_finished_log() {
    use cairn_proto::record::RecordType as R;
    use cairn_proto::request::RequestType as Q;
    use cairn_proto::response::ResponseType as A;
    use cairn_proto::result::ResultType;

    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let flags = Flags {
        port_filename: Some(port_file.clone()),
        detached: true,
        ..Flags::default()
    };
    let service = thread::spawn(move || serve(&flags, Arc::new(Events::default())));
    let mut sdk = UnixStream::connect(port_file_socket(&port_file)).unwrap();

    let run_dir = dir.path().join("offline-run-x-abc");
    let settings = cairn_proto::Settings {
        mode: Some("offline".into()),
        sync_dir: Some(run_dir.display().to_string()),
        sync_file: Some(run_dir.join("run-abc.wandb").display().to_string()),
        ..Default::default()
    };
    std::fs::create_dir_all(&run_dir).unwrap();
    let init = ask(
        &mut sdk,
        "i",
        ServerRequestType::InformInit(cairn_proto::ServerInformInitRequest {
            settings: Some(settings.clone()),
            info: Some(cairn_proto::RecordInfo {
                stream_id: "abc".into(),
                ..Default::default()
            }),
        }),
    );
    assert_eq!(init.server_response_type, None, "a bare envelope");
    let again = ask(
        &mut sdk,
        "i2",
        ServerRequestType::InformInit(cairn_proto::ServerInformInitRequest {
            settings: Some(settings),
            info: Some(cairn_proto::RecordInfo {
                stream_id: "abc".into(),
                ..Default::default()
            }),
        }),
    );
    assert!(matches!(
        again.server_response_type,
        Some(ServerResponseType::ErrorResponse(ref e)) if e.message == "run ID abc is in use"
    ));

    let run = cairn_proto::RunRecord {
        run_id: "abc".into(),
        config: Some(cairn_proto::ConfigRecord {
            update: vec![cairn_proto::ConfigItem {
                key: "lr".into(),
                value_json: "0.1".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    match result_of(ask(&mut sdk, "r", record("abc", R::Run(run)))) {
        ResultType::RunResult(result) => {
            assert!(result.error.is_none(), "{result:?}");
            let run = result.run.unwrap();
            assert_eq!(run.config.unwrap().update[0].value_json, "{\"value\": 0.1}");
            assert!(run.start_time.is_some());
        }
        other => panic!("expected a run result, got {other:?}"),
    }
    for i in 0..3 {
        sdk.write_all(&request(
            "",
            sdk_request(
                "abc",
                Q::PartialHistory(cairn_proto::PartialHistoryRequest {
                    item: vec![cairn_proto::HistoryItem {
                        key: "loss".into(),
                        value_json: format!("{}", 1.0 / f64::from(i + 1)),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            ),
        ))
        .unwrap();
    }
    match response_of(ask(
        &mut sdk,
        "s",
        sdk_request("abc", Q::HistoryStep(Default::default())),
    )) {
        Some(A::HistoryStepResponse(step)) => assert_eq!(step.step, 3),
        other => panic!("expected the history step, got {other:?}"),
    }
    let exit = ask(
        &mut sdk,
        "e",
        record(
            "abc",
            R::Exit(cairn_proto::RunExitRecord {
                exit_code: 0,
                ..Default::default()
            }),
        ),
    );
    assert!(matches!(result_of(exit), ResultType::ExitResult(r) if !r.timed_out));
    match response_of(ask(
        &mut sdk,
        "p",
        sdk_request("abc", Q::PollExit(Default::default())),
    )) {
        Some(A::PollExitResponse(poll)) => assert!(poll.done),
        other => panic!("expected poll_exit, got {other:?}"),
    }
    match response_of(ask(
        &mut sdk,
        "g",
        sdk_request("abc", Q::GetSummary(Default::default())),
    )) {
        Some(A::GetSummaryResponse(summary)) => {
            let loss = summary.item.iter().find(|i| i.key == "loss").unwrap();
            assert_eq!(loss.value_json, "0.3333333333333333");
        }
        other => panic!("expected the summary, got {other:?}"),
    }
    sdk.write_all(&request(
        "",
        ServerRequestType::InformTeardown(ServerInformTeardownRequest::default()),
    ))
    .unwrap();
    assert_eq!(
        service.join().unwrap().unwrap(),
        Outcome::TornDown { exit_code: 0 }
    );

    // The log holds the run, its three rows and the exit, in order.
    let mut reader = cairn_store::LogReader::open(run_dir.join("run-abc.wandb")).unwrap();
    let mut kinds = Vec::new();
    while let Some(next) = reader.next() {
        let record = next.unwrap().decode().unwrap();
        match record.record_type {
            Some(R::Run(_)) => kinds.push("run"),
            Some(R::History(_)) => kinds.push("history"),
            Some(R::Exit(_)) => kinds.push("exit"),
            _ => {}
        }
    }
    assert_eq!(kinds, ["run", "history", "history", "history", "exit"]);
}

#[test]
fn sync_reports_each_bad_path_and_forgets_the_sync_when_done() {
    use cairn_proto::server_sync_message::Severity;
    use cairn_proto::{
        ServerInitSyncRequest, ServerSyncRequest, ServerSyncStatusRequest, Settings,
    };

    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let flags = Flags {
        port_filename: Some(port_file.clone()),
        detached: true,
        ..Flags::default()
    };
    let service = thread::spawn(move || serve(&flags, Arc::new(Events::default())));
    let mut sdk = UnixStream::connect(port_file_socket(&port_file)).unwrap();

    let run_dir = dir.path().join("offline-run-1-bad");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("run-bad.wandb"), b"not a log at all").unwrap();
    let init = ServerInitSyncRequest {
        path: vec![
            "missing/run-gone.wandb".into(),
            run_dir.join("run-bad.wandb").display().to_string(),
        ],
        cwd: dir.path().display().to_string(),
        settings: Some(Settings {
            base_url: Some("http://127.0.0.1:9".into()),
            api_key: Some("local-key".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = ask(&mut sdk, "i", ServerRequestType::InitSync(init));
    assert!(matches!(
        answer.server_response_type,
        Some(ServerResponseType::InitSyncResponse(ref r)) if r.id == "sync-0"
    ));

    // An unknown id is answered with an empty status.
    let status = ask(
        &mut sdk,
        "s",
        ServerRequestType::SyncStatus(ServerSyncStatusRequest {
            id: "sync-9".into(),
        }),
    );
    assert_eq!(
        status.server_response_type,
        Some(ServerResponseType::SyncStatusResponse(Default::default()))
    );

    // Each bad path gets an ERROR naming it; the sync still answers.
    let sync = ask(
        &mut sdk,
        "y",
        ServerRequestType::Sync(ServerSyncRequest {
            id: "sync-0".into(),
            parallelism: 0,
        }),
    );
    let Some(ServerResponseType::SyncResponse(response)) = sync.server_response_type else {
        panic!("expected a sync response, got {sync:?}");
    };
    let errors: Vec<&str> = response
        .messages
        .iter()
        .filter(|m| m.severity == Severity::Error as i32)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{response:?}");
    assert!(
        errors.contains(&"File does not exist: missing/run-gone.wandb"),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("Failed to read \"offline-run-1-bad\": ")
                && e.contains("not a W&B transaction log")),
        "{errors:?}"
    );
    assert!(!run_dir.join("run-bad.wandb.synced").exists());

    // Done: the sync is forgotten, and cannot be started twice.
    let status = ask(
        &mut sdk,
        "s2",
        ServerRequestType::SyncStatus(ServerSyncStatusRequest {
            id: "sync-0".into(),
        }),
    );
    assert_eq!(
        status.server_response_type,
        Some(ServerResponseType::SyncStatusResponse(Default::default()))
    );
    let again = ask(
        &mut sdk,
        "y2",
        ServerRequestType::Sync(ServerSyncRequest {
            id: "sync-0".into(),
            parallelism: 5,
        }),
    );
    assert!(
        matches!(
            again.server_response_type,
            Some(ServerResponseType::ErrorResponse(_))
        ),
        "{again:?}"
    );
    let next = ask(
        &mut sdk,
        "i2",
        ServerRequestType::InitSync(Default::default()),
    );
    assert!(matches!(
        next.server_response_type,
        Some(ServerResponseType::InitSyncResponse(ref r)) if r.id == "sync-1"
    ));

    sdk.write_all(&request(
        "",
        ServerRequestType::InformTeardown(ServerInformTeardownRequest::default()),
    ))
    .unwrap();
    assert_eq!(
        service.join().unwrap().unwrap(),
        Outcome::TornDown { exit_code: 0 }
    );
}
