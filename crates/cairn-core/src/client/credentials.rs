//! Where the server and the API key come from, as W&B's tools find them: `WANDB_BASE_URL`
//! (default `https://api.wandb.ai`), then `WANDB_API_KEY`, else the `~/.netrc` entry
//! (`$NETRC` overrides the path) for the server's host that `wandb login` writes.

use std::path::PathBuf;

/// W&B's cloud, the default server.
pub const DEFAULT_BASE_URL: &str = "https://api.wandb.ai";

/// `WANDB_BASE_URL` without a trailing slash, or W&B's cloud.
pub fn base_url() -> String {
    std::env::var("WANDB_BASE_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
}

/// The API key for `base_url`: `WANDB_API_KEY`, else the netrc entry of its host.
pub fn api_key(base_url: &str) -> Option<String> {
    if let Ok(key) = std::env::var("WANDB_API_KEY")
        && !key.trim().is_empty()
    {
        return Some(key.trim().to_owned());
    }
    let path = std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")))?;
    let text = std::fs::read_to_string(path).ok()?;
    netrc_password(&text, &host(base_url))
}

/// The host (and port, if any) of a URL.
pub fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The password of `machine` in a netrc text (tokens separated by any whitespace). W&B
/// writes the machine as the host, with the port when there is one; a machine given
/// without the port also matches.
pub fn netrc_password(text: &str, machine: &str) -> Option<String> {
    let bare = machine.split(':').next().unwrap_or(machine);
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    let mut current: Option<&str> = None;
    let mut best: Option<(bool, String)> = None;
    while i < tokens.len() {
        match tokens[i] {
            "machine" if i + 1 < tokens.len() => {
                current = Some(tokens[i + 1]);
                i += 2;
            }
            "default" => {
                current = Some("");
                i += 1;
            }
            "password" if i + 1 < tokens.len() => {
                if let Some(m) = current {
                    let exact = m == machine;
                    if exact || m == bare || (m.is_empty() && best.is_none()) {
                        let better = best
                            .as_ref()
                            .is_none_or(|(was_exact, _)| exact && !was_exact);
                        if better {
                            best = Some((exact, tokens[i + 1].to_owned()));
                        }
                    }
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entries() {
        let text = "machine api.wandb.ai\n  login user\n  password cloudkey\n\
                    machine 127.0.0.1:8080 login user password localkey\n";
        assert_eq!(
            netrc_password(text, "127.0.0.1:8080").as_deref(),
            Some("localkey")
        );
        assert_eq!(
            netrc_password(text, "api.wandb.ai").as_deref(),
            Some("cloudkey")
        );
        assert_eq!(netrc_password(text, "other"), None);
        assert_eq!(host("http://127.0.0.1:8080/graphql"), "127.0.0.1:8080");
        assert_eq!(host("https://api.wandb.ai"), "api.wandb.ai");
    }
}
