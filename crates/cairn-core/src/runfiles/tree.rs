//! Key paths into nested [`Value`] maps: the config and the summary as trees.
//!
//! The config follows W&B's core exactly (`core/internal/runconfig` and its `pathtree`, in
//! wandb/wandb): an item's path is its `nested_key` when it has one, else its `key`;
//!
//! * an update whose value is a map is *merged* into the tree at the path, leaf by leaf
//!   (`SetSubtree`): its entries replace those of the same name, everything else the path
//!   holds stays, and an empty map changes nothing. So `_wandb` from the SDK's
//!   `config.persist()` keeps the `_wandb.visualize` charts sent before it, and
//!   `{"model": {"b": 2}}` after `{"model": {"a": 1}}` leaves both.
//! * an update with any other value (lists included) replaces what the path holds, maps
//!   along the way made or replacing a scalar (`Set`);
//! * a removal drops the path's node only, then every map left empty above it; a path
//!   through a scalar or a missing key changes nothing (`Remove`).
//!
//! Pure functions, no IO.

use cairn_proto::ConfigRecord;

use crate::input::key_path;
use crate::value::Value;

/// The config's top-level keys and values, in first-set order.
pub(super) type Config = indexmap::IndexMap<String, Value>;

/// Applies one config record to `config`: its updates in order, then its removals. A value
/// that is not JSON is kept as its text.
pub(super) fn apply_config(config: &mut Config, record: &ConfigRecord) {
    for item in &record.update {
        let mut path = key_path(&item.key, &item.nested_key);
        let value = Value::from_json(&item.value_json)
            .unwrap_or_else(|| Value::Str(item.value_json.clone()));
        update_config(config, &mut path, value);
    }
    for item in &record.remove {
        remove_config(config, &key_path(&item.key, &item.nested_key));
    }
}

/// Sets `value` at `path`, merging a map into what is there (see the module docs).
pub(super) fn update_config(config: &mut Config, path: &mut Vec<String>, value: Value) {
    match value {
        Value::Map(entries) => {
            for (key, value) in entries {
                path.push(key);
                update_config(config, path, value);
                path.pop();
            }
        }
        leaf => set_config(config, path, leaf),
    }
}

/// Sets `value` at `path` as one leaf, replacing what the path holds.
fn set_config(config: &mut Config, path: &[String], value: Value) {
    match path.split_first() {
        Some((top, [])) => {
            config.insert(top.clone(), value);
        }
        Some((top, rest)) => {
            let entry = config.entry(top.clone()).or_insert(Value::Map(Vec::new()));
            set_path(entry, rest, value);
        }
        None => {}
    }
}

/// Removes the node at `path`, and every map left empty above it.
pub(super) fn remove_config(config: &mut Config, path: &[String]) {
    match path.split_first() {
        Some((top, [])) => {
            config.shift_remove(top);
        }
        Some((top, rest)) => {
            if let Some(entry) = config.get_mut(top)
                && remove_pruning(entry, rest)
            {
                config.shift_remove(top);
            }
        }
        None => {}
    }
}

/// Removes `path` (non-empty) below the map `root`, and the maps it leaves empty; true
/// when `root` is a map left empty. A path through a scalar changes nothing.
fn remove_pruning(root: &mut Value, path: &[String]) -> bool {
    let Value::Map(entries) = root else {
        return false;
    };
    match path {
        [] => return false,
        [last] => entries.retain(|(k, _)| k != last),
        [first, rest @ ..] => {
            let Some(i) = entries.iter().position(|(k, _)| k == first) else {
                return false;
            };
            if !remove_pruning(&mut entries[i].1, rest) {
                return false;
            }
            entries.remove(i);
        }
    }
    entries.is_empty()
}

/// Sets `value` at `path` below `root`, making maps on the way (a scalar on the way
/// becomes a map).
pub(super) fn set_path(root: &mut Value, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *root = value;
        return;
    };
    if !matches!(root, Value::Map(_)) {
        *root = Value::Map(Vec::new());
    }
    let Value::Map(entries) = root else { return };
    let index = match entries.iter().position(|(k, _)| k == first) {
        Some(i) => i,
        None => {
            entries.push((first.clone(), Value::Map(Vec::new())));
            entries.len() - 1
        }
    };
    set_path(&mut entries[index].1, rest, value);
}

/// Removes `path` below `root`, leaving the maps above it (the summary's rule).
pub(super) fn remove_path(root: &mut Value, path: &[String]) {
    let Value::Map(entries) = root else { return };
    match path {
        [] => {}
        [last] => entries.retain(|(k, _)| k != last),
        [first, rest @ ..] => {
            if let Some((_, child)) = entries.iter_mut().find(|(k, _)| k == first) {
                remove_path(child, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests;
