//! The runs a service hosts, by stream id, and what each SDK record or request does to one.
//!
//! `inform_init` registers a run with its settings; its `run` record starts cairn's
//! pipeline for it (handler → writer → sender, the `.wandb` log at the settings'
//! `sync_file`) and is answered with the run as the SDK reads it. Data records become the
//! pipeline's inputs in order; requests are answered and never written to the log. `exit`
//! finishes the run on a thread of its own — the connection reads on, and other runs are
//! never held up — and is answered only once the finish is done; the summary and samples
//! the SDK asks for afterwards, for its footer, are taken just before.
//!
//! Online, the pipeline also uploads: cairn-core's uploader follows the log to the
//! settings' server, and `exit` is answered once the upload is done (or its deadline
//! passed; the log keeps everything for `cairn sync`).
//!
//! One file per role, listed from the top down: each uses only roles listed after it.
//!
//! * `registry` — [`Runs`], every run by stream id: `inform_init`, `inform_attach`,
//!   `inform_finish`, teardown, and the dispatch of each record by kind to the roles
//!   below.
//! * `start` — the `run` record: the pipeline started offline or online (the `resume`
//!   check, the run created on the server), or a started run updated.
//! * `requests` — the requests inside records, one function per kind, each answered from
//!   the run's state.
//! * `finish` — `exit`, and the runs the user never finished at teardown.
//! * `records` — data records (summary, config, `run.log`'s partial history, the rest) as
//!   pipeline inputs; pure.
//! * `files` — the files the core makes for a run: the saved script, `requirements.txt`,
//!   the environment behind `wandb-metadata.json`.
//! * `run` — one run's state and phases (pending → running → finishing → finished), and
//!   the ways into it the roles share: feed its pipeline, ask its handler.
//! * `answers` — the responses the roles send; pure.
//! * `messages` — a run's `internal_messages` long poll.

mod answers;
mod files;
mod finish;
mod messages;
mod records;
mod registry;
mod requests;
mod run;
mod start;

pub(crate) use registry::Runs;
