//! The resolver: each setting's precedence (code > environment > workspace settings file
//! > global settings file > default), the resume values, and the errors.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::launch::{
    Explicit, Mode, Resume, RunFolder, RunSettings, SettingsError, SettingsFile, Sources, resolve,
};

/// `(name, value)` pairs: environment variables, or settings files and their bodies.
type Pairs<'a> = &'a [(&'a str, &'a str)];

const GLOBAL: &str = "/home/u/.config/wandb/settings";
const WORKSPACE: &str = "/work/wandb/settings";

/// Resolves with `env` variables and settings files `[(path, [default] body)]`, global
/// first.
fn check(
    explicit: Explicit,
    env: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Result<RunSettings, SettingsError> {
    resolve_all(explicit, env, files, None, None)
}

fn resolve_all(
    explicit: Explicit,
    env: &[(&str, &str)],
    files: &[(&str, &str)],
    netrc: Option<&str>,
    auto_resume: Option<&str>,
) -> Result<RunSettings, SettingsError> {
    let vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = move |name: &str| vars.get(name).cloned();
    resolve(Sources {
        explicit,
        env: &lookup,
        files: files
            .iter()
            .map(|(path, body)| SettingsFile {
                path: PathBuf::from(path),
                text: format!("[default]\n{body}\n"),
            })
            .collect(),
        netrc: netrc.map(str::to_owned),
        auto_resume: auto_resume.map(|text| SettingsFile {
            path: PathBuf::from("/work/wandb/wandb-resume.json"),
            text: text.to_owned(),
        }),
    })
}

/// One setting settable in code, the environment and the settings files.
struct Layered {
    env: &'static str,
    key: &'static str,
    /// Sets the code's value from its text.
    code: fn(&mut Explicit, &str),
    /// The resolved value, rendered.
    get: fn(&RunSettings) -> String,
    /// Values given by code, env, workspace file, global file.
    given: [&'static str; 4],
    /// What each of those resolves to, rendered.
    expect: [&'static str; 4],
    /// The default, rendered (`None`: not checked here).
    default: Option<&'static str>,
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_owned())
}

fn secs(text: &str) -> Duration {
    Duration::from_secs_f64(text.parse().unwrap())
}

fn layered() -> Vec<Layered> {
    vec![
        Layered {
            env: "WANDB_MODE",
            key: "mode",
            code: |e, v| e.mode = Some(v.into()),
            get: |s| format!("{:?}", s.mode),
            // Online would need a key: disabled and offline alternate instead.
            given: ["disabled", "OFFLINE", "disabled", "dryrun"],
            expect: ["Disabled", "Offline", "Disabled", "Offline"],
            default: Some("Offline"),
        },
        Layered {
            env: "WANDB_BASE_URL",
            key: "base_url",
            code: |e, v| e.base_url = Some(v.into()),
            get: |s| s.connection.base_url.clone(),
            given: [
                "http://code:1",
                "http://env/",
                " https://ws ",
                "http://global//",
            ],
            expect: ["http://code:1", "http://env", "https://ws", "http://global"],
            default: Some("https://api.wandb.ai"),
        },
        Layered {
            env: "WANDB_API_KEY",
            key: "api_key",
            code: |e, v| e.api_key = Some(v.into()),
            get: |s| format!("{}:{:?}", s.connection.api_key, s.mode),
            given: ["kc", "ke", "kw", "kg"],
            // A key found anywhere makes the run online by default.
            expect: ["kc:Online", "ke:Online", "kw:Online", "kg:Online"],
            default: Some(":Offline"),
        },
        Layered {
            env: "WANDB_ENTITY",
            key: "entity",
            code: |e, v| e.entity = Some(v.into()),
            get: |s| text(&s.entity),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("-"),
        },
        Layered {
            env: "WANDB_PROJECT",
            key: "project",
            code: |e, v| e.project = Some(v.into()),
            get: |s| s.project.clone(),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("uncategorized"),
        },
        Layered {
            env: "WANDB_RUN_ID",
            key: "run_id",
            code: |e, v| e.run_id = Some(v.into()),
            get: |s| s.run_id.clone(),
            given: ["code-1", "env_1", "ws1", "glob1"],
            expect: ["code-1", "env_1", "ws1", "glob1"],
            default: None,
        },
        Layered {
            env: "WANDB_RESUME",
            key: "resume",
            code: |e, v| e.resume = Some(v.into()),
            get: |s| format!("{:?}", s.resume),
            given: ["must", "allow", "never", "true"],
            expect: ["Some(Must)", "Some(Allow)", "Some(Never)", "Some(Auto)"],
            default: Some("None"),
        },
        Layered {
            env: "WANDB_NAME",
            key: "run_name",
            code: |e, v| e.name = Some(v.into()),
            get: |s| text(&s.name),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("-"),
        },
        Layered {
            env: "WANDB_NOTES",
            key: "run_notes",
            code: |e, v| e.notes = Some(v.into()),
            get: |s| text(&s.notes),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("-"),
        },
        Layered {
            env: "WANDB_RUN_GROUP",
            key: "run_group",
            code: |e, v| e.group = Some(v.into()),
            get: |s| text(&s.group),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("-"),
        },
        Layered {
            env: "WANDB_JOB_TYPE",
            key: "run_job_type",
            code: |e, v| e.job_type = Some(v.into()),
            get: |s| text(&s.job_type),
            given: ["c", "e", "w", "g"],
            expect: ["c", "e", "w", "g"],
            default: Some("-"),
        },
        Layered {
            env: "WANDB_TAGS",
            key: "run_tags",
            code: |e, v| e.tags = Some(vec![v.into()]),
            get: |s| s.tags.join("|"),
            given: ["a,b", "e1, e2,", "w", "g1,g2"],
            // Code gives a list as it is; the other layers split on commas.
            expect: ["a,b", "e1|e2", "w", "g1|g2"],
            default: Some(""),
        },
        Layered {
            env: "WANDB_CONSOLE",
            key: "console",
            code: |e, v| e.console = Some(v != "off"),
            get: |s| s.console.to_string(),
            given: ["off", "wrap", "off", "auto"],
            expect: ["false", "true", "false", "true"],
            default: Some("true"),
        },
        Layered {
            env: "WANDB__STATS_SAMPLING_INTERVAL",
            key: "x_stats_sampling_interval",
            code: |e, v| e.system_metrics = Some(Some(secs(v))),
            get: |s| format!("{:?}", s.system.as_ref().map(|c| c.interval)),
            given: ["1", "2.5", "3", "4"],
            expect: ["Some(1s)", "Some(2.5s)", "Some(3s)", "Some(4s)"],
            default: Some("Some(15s)"),
        },
        Layered {
            env: "WANDB__FILE_STREAM_TRANSMIT_INTERVAL",
            key: "x_file_stream_transmit_interval",
            code: |e, v| e.transmit_interval = Some(secs(v)),
            get: |s| format!("{:?}", s.transmit_interval),
            given: ["1", "0.5", "0", "4"],
            expect: ["Some(1s)", "Some(500ms)", "Some(0ns)", "Some(4s)"],
            default: Some("None"),
        },
    ]
}

#[test]
fn each_setting_takes_code_then_environment_then_files_then_default() {
    for case in layered() {
        let [code, env, ws, global] = case.given;
        let env_var = [(case.env, env)];
        let ws_file = format!("{} = {ws}", case.key);
        let global_file = format!("{} = {global}", case.key);
        let both = [
            (GLOBAL, global_file.as_str()),
            (WORKSPACE, ws_file.as_str()),
        ];
        let mut explicit = Explicit::default();
        (case.code)(&mut explicit, code);
        let scenarios = [
            (
                "code",
                check(explicit, &env_var, &both),
                Some(case.expect[0]),
            ),
            (
                "env",
                check(Explicit::default(), &env_var, &both),
                Some(case.expect[1]),
            ),
            (
                "workspace",
                check(Explicit::default(), &[], &both),
                Some(case.expect[2]),
            ),
            (
                "global",
                check(Explicit::default(), &[], &both[..1]),
                Some(case.expect[3]),
            ),
            (
                "default",
                check(Explicit::default(), &[], &[]),
                case.default,
            ),
        ];
        for (layer, resolved, expect) in scenarios {
            let resolved = resolved.unwrap_or_else(|e| panic!("{} from {layer}: {e}", case.key));
            if let Some(expect) = expect {
                assert_eq!((case.get)(&resolved), expect, "{} from {layer}", case.key);
            }
        }
    }
}

#[test]
fn an_empty_value_is_unset_at_every_layer() {
    let s = check(
        Explicit {
            project: Some(String::new()),
            ..Explicit::default()
        },
        &[("WANDB_PROJECT", "")],
        &[(GLOBAL, "project = from-file"), (WORKSPACE, "project =")],
    )
    .unwrap();
    assert_eq!(s.project, "from-file");
}

#[test]
fn resume_values_and_their_boolean_forms() {
    let resume = |value: &str| check(Explicit::default(), &[("WANDB_RESUME", value)], &[]);
    for (value, expect) in [
        ("allow", Some(Resume::Allow)),
        ("must", Some(Resume::Must)),
        ("never", Some(Resume::Never)),
        ("auto", Some(Resume::Auto)),
        ("Never", Some(Resume::Never)),
        // `wandb.init(resume=True)` is W&B's "auto"; False and empty are no resume.
        ("true", Some(Resume::Auto)),
        ("TRUE", Some(Resume::Auto)),
        ("false", None),
        ("", None),
    ] {
        assert_eq!(resume(value).unwrap().resume, expect, "{value:?}");
    }
    // An explicit false overrides the environment's resume.
    let s = check(
        Explicit {
            resume: Some("false".into()),
            ..Explicit::default()
        },
        &[("WANDB_RESUME", "must")],
        &[],
    )
    .unwrap();
    assert_eq!(s.resume, None);
}

#[test]
fn a_bad_value_is_an_error_naming_it_and_where_it_came_from() {
    let cases: Vec<(Explicit, Pairs, Pairs, &str)> = vec![
        (
            Explicit::default(),
            &[("WANDB_RESUME", "sometimes")],
            &[],
            "WANDB_RESUME sets resume to `sometimes`, which is not one of allow, must, never, \
             auto, true or false",
        ),
        (
            Explicit {
                resume: Some("yes".into()),
                ..Explicit::default()
            },
            &[],
            &[],
            "the code sets resume to `yes`, which is not one of allow, must, never, auto, true \
             or false",
        ),
        (
            Explicit::default(),
            &[],
            &[(WORKSPACE, "resume = maybe")],
            "`resume` in /work/wandb/settings sets resume to `maybe`, which is not one of \
             allow, must, never, auto, true or false",
        ),
        (
            Explicit {
                mode: Some("sometimes".into()),
                ..Explicit::default()
            },
            &[],
            &[],
            "the code sets mode to `sometimes`, which is not one of online, offline or disabled",
        ),
        (
            Explicit::default(),
            &[("WANDB_BASE_URL", "localhost:8080")],
            &[],
            "WANDB_BASE_URL sets base_url to `localhost:8080`, which is not an http:// or \
             https:// URL",
        ),
        (
            Explicit::default(),
            &[("WANDB_RUN_ID", "../escape")],
            &[],
            "WANDB_RUN_ID sets run_id to `../escape`, which is not a run id of letters, digits, \
             `-` and `_` (at most 128)",
        ),
        (
            Explicit::default(),
            &[("WANDB_CONSOLE", "loud")],
            &[],
            "WANDB_CONSOLE sets console to `loud`, which is not one of auto, off, wrap, \
             redirect, wrap_raw or wrap_emu",
        ),
        (
            Explicit::default(),
            &[("CAIRN_FINISH_DEADLINE", "-1")],
            &[],
            "CAIRN_FINISH_DEADLINE sets finish_deadline to `-1`, which is not a number of \
             seconds (0 or more)",
        ),
        (
            Explicit::default(),
            &[],
            &[(GLOBAL, "x_stats_sampling_interval = 0")],
            "`x_stats_sampling_interval` in /home/u/.config/wandb/settings sets \
             x_stats_sampling_interval to `0`, which is not a number of seconds above 0",
        ),
        (
            Explicit::default(),
            &[("WANDB__DISABLE_STATS", "perhaps")],
            &[],
            "WANDB__DISABLE_STATS sets x_disable_stats to `perhaps`, which is not true or false",
        ),
    ];
    for (explicit, env, files, expect) in cases {
        let err = check(explicit, env, files).unwrap_err();
        assert_eq!(err.to_string(), expect);
    }
}

#[test]
fn online_needs_a_key_and_a_key_makes_online_the_default() {
    let online = Explicit {
        mode: Some("online".into()),
        base_url: Some("http://127.0.0.1:9/".into()),
        ..Explicit::default()
    };
    let err = check(online.clone(), &[], &[]).unwrap_err();
    assert!(
        matches!(&err, SettingsError::NoApiKey { base_url } if base_url == "http://127.0.0.1:9")
    );
    assert!(err.to_string().contains("http://127.0.0.1:9"), "{err}");
    // `wandb login` wrote the key to the netrc entry of the server's host.
    let netrc = "machine api.wandb.ai password cloud\nmachine 127.0.0.1:9 password local\n";
    let s = resolve_all(online, &[], &[], Some(netrc), None).unwrap();
    assert_eq!(s.connection.api_key, "local");
    let s = resolve_all(Explicit::default(), &[], &[], Some(netrc), None).unwrap();
    assert_eq!(
        (s.mode, s.connection.api_key.as_str()),
        (Mode::Online, "cloud")
    );
    // The environment's key wins over the netrc's; disabled needs none.
    let s = resolve_all(
        Explicit::default(),
        &[("WANDB_API_KEY", " env ")],
        &[],
        Some(netrc),
        None,
    )
    .unwrap();
    assert_eq!(s.connection.api_key, "env");
    let s = check(Explicit::default(), &[("WANDB_MODE", "disabled")], &[]).unwrap();
    assert_eq!(s.mode, Mode::Disabled);
}

#[test]
fn auto_resume_takes_the_run_id_from_the_resume_file() {
    let auto = |explicit: Explicit, env: &[(&str, &str)], file: &str| {
        resolve_all(explicit, env, &[], None, Some(file))
    };
    let file = r#"{"run_id": "crashed1"}"#;
    let s = auto(Explicit::default(), &[("WANDB_RESUME", "auto")], file).unwrap();
    assert_eq!(s.run_id, "crashed1");
    let s = auto(Explicit::default(), &[("WANDB_RESUME", "true")], file).unwrap();
    assert_eq!(s.run_id, "crashed1");
    // A given id wins; without auto the file is not read.
    let given = Explicit {
        run_id: Some("given".into()),
        ..Explicit::default()
    };
    assert_eq!(
        auto(given, &[("WANDB_RESUME", "auto")], file)
            .unwrap()
            .run_id,
        "given"
    );
    let s = auto(Explicit::default(), &[("WANDB_RESUME", "allow")], file).unwrap();
    assert_ne!(s.run_id, "crashed1");
    // An unreadable file is no id; an unusable id is an error naming the file.
    let s = auto(Explicit::default(), &[("WANDB_RESUME", "auto")], "{").unwrap();
    assert_eq!(s.run_id.len(), 8);
    let err = auto(
        Explicit::default(),
        &[("WANDB_RESUME", "auto")],
        r#"{"run_id":"a/b"}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`run_id` in /work/wandb/wandb-resume.json sets run_id to `a/b`"),
        "{err}"
    );
}

#[test]
fn the_folder_comes_from_code_then_wandb_dir_never_a_settings_file() {
    let code = Explicit {
        dir: Some("/code".into()),
        ..Explicit::default()
    };
    let env = [("WANDB_DIR", "/env")];
    let file = [(GLOBAL, "root_dir = /file")];
    let folder = |s: RunSettings| s.folder;
    assert_eq!(
        folder(check(code, &env, &file).unwrap()),
        RunFolder::Under("/code".into())
    );
    assert_eq!(
        folder(check(Explicit::default(), &env, &file).unwrap()),
        RunFolder::Under("/env".into())
    );
    assert_eq!(
        folder(check(Explicit::default(), &[], &file).unwrap()),
        RunFolder::Under(".".into())
    );
}

#[test]
fn system_metrics_are_turned_off_by_code_or_disable_stats() {
    let interval = |s: RunSettings| s.system.map(|c| c.interval);
    let never = Explicit {
        system_metrics: Some(None),
        ..Explicit::default()
    };
    assert_eq!(interval(check(never, &[], &[]).unwrap()), None);
    let off = [("WANDB__DISABLE_STATS", "true")];
    assert_eq!(
        interval(check(Explicit::default(), &off, &[]).unwrap()),
        None
    );
    let file_off = [(WORKSPACE, "x_disable_stats = True")];
    assert_eq!(
        interval(check(Explicit::default(), &[], &file_off).unwrap()),
        None
    );
    // The environment's false overrides the file's true; code overrides both.
    let on = [("WANDB__DISABLE_STATS", "false")];
    assert_eq!(
        interval(check(Explicit::default(), &on, &file_off).unwrap()),
        Some(Duration::from_secs(15))
    );
    let every = Explicit {
        system_metrics: Some(Some(Duration::from_secs(2))),
        ..Explicit::default()
    };
    assert_eq!(
        interval(check(every, &off, &[]).unwrap()),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn the_finish_deadline_comes_from_code_then_cairn_finish_deadline() {
    let deadline = |explicit: Explicit, env: &[(&str, &str)]| {
        check(explicit, env, &[]).unwrap().finish_deadline
    };
    let env = [("CAIRN_FINISH_DEADLINE", "2.5")];
    let code = Explicit {
        finish_deadline: Some(Duration::from_secs(7)),
        ..Explicit::default()
    };
    assert_eq!(deadline(code, &env), Duration::from_secs(7));
    assert_eq!(
        deadline(Explicit::default(), &env),
        Duration::from_millis(2500)
    );
    assert_eq!(deadline(Explicit::default(), &[]), Duration::from_secs(60));
}

#[test]
fn explicit_values_alone_ignore_the_process_environment() {
    let s = RunSettings::from_explicit(Explicit {
        mode: Some("online".into()),
        api_key: Some("k".into()),
        base_url: Some("http://srv".into()),
        run_id: Some("r1".into()),
        resume: Some("must".into()),
        ..Explicit::default()
    })
    .unwrap();
    assert_eq!(s.mode, Mode::Online);
    assert_eq!(s.connection.base_url, "http://srv");
    assert_eq!((s.run_id.as_str(), s.resume), ("r1", Some(Resume::Must)));
    assert_eq!(s.project, "uncategorized");
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("\"k\""),
        "the key leaks into Debug: {debug}"
    );
}

#[test]
fn the_run_record_names_the_run_as_the_settings_do() {
    let s = check(
        Explicit {
            run_id: Some("r1".into()),
            entity: Some("team".into()),
            name: Some("nice".into()),
            ..Explicit::default()
        },
        &[("WANDB_TAGS", "a,b"), ("WANDB_PROJECT", "p")],
        &[],
    )
    .unwrap();
    let started = std::time::UNIX_EPOCH + Duration::from_millis(1_500);
    let run = s.run_record(started);
    assert_eq!(
        (
            run.run_id.as_str(),
            run.project.as_str(),
            run.entity.as_str()
        ),
        ("r1", "p", "team")
    );
    assert_eq!(run.display_name, "nice");
    assert_eq!(run.tags, ["a", "b"]);
    let start = run.start_time.unwrap();
    assert_eq!((start.seconds, start.nanos), (1, 500_000_000));
}
