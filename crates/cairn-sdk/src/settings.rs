//! Run settings, resolved by cairn-core's `launch` once for every front end: what `init`
//! was told in code, then W&B's environment variables (`WANDB_*`), then W&B's settings
//! files (`~/.config/wandb/settings`, `<dir>/wandb/settings`), then the defaults — see
//! [`cairn_core::launch`] for the table of settings.
//!
//! Re-exported here: the environment variable names, the defaults, the [`Mode`] and the
//! run folder layout ([`RunLayout`], W&B's own, so that `wandb sync` and `cairn sync`
//! accept each other's runs).

pub use cairn_core::launch::{
    DEFAULT_FINISH_DEADLINE, DEFAULT_PROJECT, ENV_API_KEY, ENV_BASE_URL, ENV_CONFIG_DIR,
    ENV_CONSOLE, ENV_DIR, ENV_DISABLE_STATS, ENV_ENTITY, ENV_FINISH_DEADLINE, ENV_JOB_TYPE,
    ENV_MODE, ENV_NAME, ENV_NOTES, ENV_PROJECT, ENV_RESUME, ENV_RUN_GROUP, ENV_RUN_ID,
    ENV_STATS_INTERVAL, ENV_TAGS, ENV_TRANSMIT_INTERVAL, Mode, RunLayout,
};
