//! Chart data: a run's history (or system metrics) as numeric columns, reduced for the
//! pixels a chart has.
//!
//! **Columns.** The first request for a run reads its lines once and keeps every numeric
//! value as a column (`key → rows, values`; nested objects flatten to `a.b`, media objects
//! — those with `_type` — are skipped). Later requests read only lines the run gained
//! since, so a live run costs one small read per poll. Columns live in [`SeriesCache`],
//! bounded by bytes and evicting the least recently used run.
//!
//! **Reduction.** [`reduce`] splits `[from, to]` into `buckets` equal spans of x and keeps,
//! of each span, the first, last, lowest and highest point (the "M4" rule): the line drawn
//! from those points covers exactly the pixels the full series would, so a one-step spike
//! always shows, and nothing is sampled at random. Series that already fit are answered
//! whole. A zoom asks again with a finer `[from, to]`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::db::Joined;
use futures_util::StreamExt as _;

/// Lines read per database round trip while filling columns.
const READ_CHUNK: i64 = 50_000;
/// Round trips in flight at once while filling columns.
const READS_AT_ONCE: usize = 3;

/// One numeric column: the rows (line order) that hold the key, and their values.
#[derive(Debug, Default)]
pub(crate) struct Column {
    pub(crate) rows: Vec<u32>,
    pub(crate) values: Vec<f64>,
}

/// The numeric columns of one run's line file, as far as it has been read.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    /// The line offset to read next.
    pub(crate) next_line: i64,
    /// Rows parsed so far.
    rows: u32,
    index: HashMap<String, usize>,
    columns: Vec<Column>,
}

impl Columns {
    /// Adds one JSON line as the next row. Lines that are not JSON objects add an empty
    /// row (the line is kept in the database; the chart has nothing to draw from it).
    pub(crate) fn push_line(&mut self, line: &str) {
        let row = self.rows;
        self.rows += 1;
        for (key, value) in numbers(line) {
            self.push(row, &key, value);
        }
    }

    fn push(&mut self, row: u32, key: &str, value: f64) {
        let at = match self.index.get(key) {
            Some(&at) => at,
            None => {
                self.columns.push(Column::default());
                self.index.insert(key.to_owned(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        let column = &mut self.columns[at];
        // A key repeated within one line keeps its last value.
        if column.rows.last() == Some(&row) {
            if let Some(last) = column.values.last_mut() {
                *last = value;
            }
            return;
        }
        column.rows.push(row);
        column.values.push(value);
    }

    /// The column of `key`.
    pub(crate) fn column(&self, key: &str) -> Option<&Column> {
        self.index.get(key).map(|&at| &self.columns[at])
    }

    /// Every key with a numeric value, sorted.
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.index.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Bytes held, for the cache's budget.
    fn bytes(&self) -> usize {
        self.columns
            .iter()
            .map(|c| c.rows.capacity() * 4 + c.values.capacity() * 8)
            .sum::<usize>()
            + self.index.keys().map(|k| k.len() + 48).sum::<usize>()
    }

    /// The (x, y) points of `y_key` against `x_key`, in row order: rows holding both.
    pub(crate) fn pairs(&self, x_key: &str, y_key: &str) -> (Vec<f64>, Vec<f64>) {
        let (Some(x), Some(y)) = (self.column(x_key), self.column(y_key)) else {
            return (Vec::new(), Vec::new());
        };
        let mut xs = Vec::with_capacity(y.rows.len());
        let mut ys = Vec::with_capacity(y.rows.len());
        let mut i = 0;
        for (row, &value) in y.rows.iter().zip(&y.values) {
            while i < x.rows.len() && x.rows[i] < *row {
                i += 1;
            }
            if i < x.rows.len() && x.rows[i] == *row && x.values[i].is_finite() && value.is_finite()
            {
                xs.push(x.values[i]);
                ys.push(value);
            }
        }
        (xs, ys)
    }
}

/// A reduced series: the points kept, and how many points lay in the asked range.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reduced {
    pub(crate) x: Vec<f64>,
    pub(crate) y: Vec<f64>,
    pub(crate) count: usize,
}

/// Keeps, of each of `buckets` equal spans of `[from, to]`, the first, last, lowest and
/// highest point (see the module doc), plus the nearest point outside each end so a line
/// runs on to the chart's edges. Points must be in row order; x need not be monotonic.
pub(crate) fn reduce(xs: &[f64], ys: &[f64], from: f64, to: f64, buckets: usize) -> Reduced {
    let buckets = buckets.max(1);
    let inside: Vec<usize> = (0..xs.len())
        .filter(|&i| xs[i] >= from && xs[i] <= to)
        .collect();
    let count = inside.len();
    let mut keep: Vec<usize> = Vec::new();
    let before = inside.first().and_then(|&first| first.checked_sub(1));
    let after = inside
        .last()
        .map(|&last| last + 1)
        .filter(|&i| i < xs.len());
    if count <= buckets * 4 {
        keep.extend(&inside);
    } else {
        // Per bucket: first, last, min, max (indices into xs/ys).
        let mut slots: Vec<Option<[usize; 4]>> = vec![None; buckets];
        let span = to - from;
        for &i in &inside {
            let b = if span > 0.0 {
                (((xs[i] - from) / span) * buckets as f64) as usize
            } else {
                0
            }
            .min(buckets - 1);
            match &mut slots[b] {
                None => slots[b] = Some([i, i, i, i]),
                Some(s) => {
                    s[1] = i;
                    if ys[i] < ys[s[2]] {
                        s[2] = i;
                    }
                    if ys[i] > ys[s[3]] {
                        s[3] = i;
                    }
                }
            }
        }
        for slot in slots.into_iter().flatten() {
            let mut four = slot;
            four.sort_unstable();
            let mut last = None;
            for i in four {
                if last != Some(i) {
                    keep.push(i);
                    last = Some(i);
                }
            }
        }
    }
    let mut out = Reduced {
        count,
        ..Reduced::default()
    };
    for i in before.into_iter().chain(keep).chain(after) {
        out.x.push(xs[i]);
        out.y.push(ys[i]);
    }
    out
}

/// The numeric leaves of the JSON object `line` (W&B's JSON, whose `NaN` and `±Infinity`
/// are not drawable and left out), nested keys flattened to `a.b`, in line order; none
/// when `line` is not such an object.
fn numbers(line: &str) -> Vec<(Cow<'_, str>, f64)> {
    let mut leaves = Leaves {
        // A history line has a handful of numbers: one allocation for most.
        found: Vec::with_capacity(16),
        ..Leaves::default()
    };
    match cairn_proto::value::read(line, &mut leaves) {
        Ok(()) => leaves.found,
        Err(_) => Vec::new(),
    }
}

/// Collects numeric leaves while the reader walks a line: maps are flattened, lists
/// skipped whole, and a nested map with a `_type` key (media) dropped with all it holds.
#[derive(Default)]
struct Leaves<'a> {
    found: Vec<(Cow<'a, str>, f64)>,
    /// The maps open around the reader, outermost first.
    maps: Vec<OpenMap>,
    /// The flattened key of the value being read (`a.b`).
    key: Cow<'a, str>,
    /// How many lists are open around the reader (0: none; inside one, all is skipped).
    lists: usize,
}

struct OpenMap {
    /// The length of the flattened key of the map itself (its members' prefix).
    prefix: usize,
    /// How many leaves were found before the map began.
    found_before: usize,
    /// Whether the map is media (it has a `_type` key and is not the line itself).
    media: bool,
}

impl<'a> cairn_proto::value::Visit<'a> for Leaves<'a> {
    fn scalar(&mut self, scalar: cairn_proto::value::Scalar<'a>) {
        if self.lists == 0
            && !self.maps.is_empty()
            && let cairn_proto::value::Scalar::Number(n) = scalar
        {
            let value = n.to_f64();
            if value.is_finite() {
                self.found.push((self.key.clone(), value));
            }
        }
    }
    fn begin_list(&mut self) {
        self.lists += 1;
    }
    fn end_list(&mut self) {
        self.lists = self.lists.saturating_sub(1);
    }
    fn begin_map(&mut self) {
        if self.lists == 0 {
            self.maps.push(OpenMap {
                prefix: self.key.len(),
                found_before: self.found.len(),
                media: false,
            });
        }
    }
    fn key(&mut self, key: Cow<'a, str>) {
        if self.lists > 0 {
            return;
        }
        match &mut self.maps[..] {
            [] => {}
            [_line] => self.key = key,
            [.., map] => {
                map.media |= key == "_type";
                let flat = self.key.to_mut();
                flat.truncate(map.prefix);
                flat.push('.');
                flat.push_str(&key);
            }
        }
    }
    fn end_map(&mut self) {
        if self.lists == 0
            && let Some(map) = self.maps.pop()
            && map.media
        {
            self.found.truncate(map.found_before);
        }
    }
}

/// Which line file a series reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    History,
    Events,
}

struct Entry {
    columns: Arc<tokio::sync::Mutex<Columns>>,
    bytes: usize,
    used: Instant,
}

/// The columns of recently charted runs, within a byte budget (see the module doc).
pub(crate) struct SeriesCache {
    budget: usize,
    entries: Mutex<HashMap<(i64, Source), Entry>>,
}

impl fmt::Debug for SeriesCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesCache")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl SeriesCache {
    /// A cache holding up to about `budget` bytes of columns.
    pub(crate) fn new(budget: usize) -> SeriesCache {
        SeriesCache {
            budget,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The columns of `run`'s `source`, read up to `lines` lines, locked for the caller.
    /// What is missing is read with `read(from, to)`: the lines at offsets `[from, to)`
    /// (`None`: no line there).
    pub(crate) async fn columns<F, Fut, E>(
        &self,
        run: i64,
        source: Source,
        lines: i64,
        mut read: F,
    ) -> Result<tokio::sync::OwnedMutexGuard<Columns>, E>
    where
        F: FnMut(i64, i64) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Joined>, E>>,
    {
        let shared = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let entry = entries.entry((run, source)).or_insert_with(|| Entry {
                columns: Arc::default(),
                bytes: 0,
                used: Instant::now(),
            });
            entry.used = Instant::now();
            entry.columns.clone()
        };
        let mut columns = shared.lock_owned().await;
        if columns.next_line < lines {
            let started = Instant::now();
            let first = columns.next_line;
            // Ranges are read by a few connections at once, and parsed in order as they
            // arrive: the database and the parser work side by side.
            let ranges: Vec<(i64, i64)> = (first..lines)
                .step_by(READ_CHUNK as usize)
                .map(|from| (from, (from + READ_CHUNK).min(lines)))
                .collect();
            let mut chunks = futures_util::stream::iter(ranges)
                .map(|(from, to)| read(from, to))
                .buffered(READS_AT_ONCE);
            while let Some(chunk) = chunks.next().await {
                if let Some(joined) = chunk? {
                    for (_, line) in joined.lines() {
                        columns.push_line(line);
                    }
                }
            }
            // The counter is the highest offset + 1: every line below it has been read.
            columns.next_line = lines;
            let bytes = columns.bytes();
            tracing::debug!(
                run,
                ?source,
                lines = columns.next_line - first,
                bytes,
                ms = started.elapsed().as_millis() as u64,
                "chart columns filled"
            );
            self.account((run, source), bytes);
        }
        Ok(columns)
    }

    /// Records an entry's new size and evicts the least recently used others while the
    /// total is over budget.
    fn account(&self, key: (i64, Source), bytes: usize) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(&key) {
            entry.bytes = bytes;
        }
        while entries.values().map(|e| e.bytes).sum::<usize>() > self.budget {
            let oldest = entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Forgets a run (deleted, or rewritten by a resume from an earlier step).
    pub(crate) fn forget(&self, run: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(r, _), _| *r != run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_leaves_flatten_and_media_is_skipped() {
        let got = numbers(
            r#"{"_step":3,"loss":0.5,"name":"x","ok":true,"nested":{"a":1,"b":{"c":2.5}},
               "img":{"_type":"image-file","width":28,"height":28},"list":[1,2],"n":null,
               "esc\"aped":7}"#,
        );
        let keys: Vec<&str> = got.iter().map(|(k, _)| &**k).collect();
        assert_eq!(
            keys,
            ["_step", "loss", "nested.a", "nested.b.c", "esc\"aped"]
        );
        assert_eq!(got[3].1, 2.5);
    }

    #[test]
    fn python_nan_words_do_not_lose_the_line() {
        let mut columns = Columns::default();
        columns.push_line(r#"{"_step":0,"a":NaN,"b":1.5,"c":-Infinity}"#);
        columns.push_line("not json");
        columns.push_line(r#"{"_step":2,"b":2.5}"#);
        assert_eq!(columns.keys(), ["_step", "b"]);
        let (x, y) = columns.pairs("_step", "b");
        assert_eq!((x, y), (vec![0.0, 2.0], vec![1.5, 2.5]));
    }

    /// Reading the bare NaN words once rewrote every "NaN" in the line, keys and strings
    /// too: `loss_NaN_count` became `loss_null_count`, and a string "NaNa" broke the line.
    #[test]
    fn nan_inside_keys_and_strings_stays_intact() {
        let got = numbers(
            r#"{"_step":1,"loss_NaN_count":2,"name":"NaNa","acc":NaN,"Infinity_x":-Infinity,
               "nested":{"NaN":3,"s":"-Infinity"},"img":{"_type":"image","NaN":1},"big":123456789012345678901234}"#,
        );
        let got: Vec<(&str, f64)> = got.iter().map(|(k, v)| (&**k, *v)).collect();
        assert_eq!(
            got,
            [
                ("_step", 1.0),
                ("loss_NaN_count", 2.0),
                ("nested.NaN", 3.0),
                ("big", 1.2345678901234568e23),
            ]
        );
        let mut columns = Columns::default();
        columns.push_line(r#"{"_step":0,"loss_NaN_count":5,"s":"NaN","x":NaN}"#);
        assert_eq!(columns.keys(), ["_step", "loss_NaN_count"]);
        assert!(
            numbers(r#"{"a":1,"b":}"#).is_empty(),
            "a broken line adds nothing"
        );
        assert!(numbers("[1, 2]").is_empty());
    }

    #[test]
    fn pairs_join_rows_holding_both_keys() {
        let mut columns = Columns::default();
        for i in 0..6 {
            if i % 2 == 0 {
                columns.push_line(&format!(r#"{{"_step":{i},"train":{i}}}"#));
            } else {
                columns.push_line(&format!(r#"{{"_step":{i},"val":{}}}"#, i * 10));
            }
        }
        assert_eq!(
            columns.pairs("_step", "val"),
            (vec![1.0, 3.0, 5.0], vec![10.0, 30.0, 50.0])
        );
        assert_eq!(
            columns.pairs("train", "_step"),
            (vec![0.0, 2.0, 4.0], vec![0.0, 2.0, 4.0])
        );
        assert_eq!(columns.pairs("_step", "missing"), (vec![], vec![]));
    }

    #[test]
    fn reduction_keeps_spikes_ends_and_extremes() {
        let n = 1_000_000;
        let xs: Vec<f64> = (0..n).map(f64::from).collect();
        let mut ys: Vec<f64> = (0..n).map(|i| f64::from(i % 100) / 100.0).collect();
        ys[731_234] = 1000.0;
        ys[5] = -50.0;
        let r = reduce(&xs, &ys, 0.0, f64::from(n - 1), 800);
        assert_eq!(r.count, n as usize);
        assert!(r.x.len() <= 4 * 800);
        assert!(r.x.windows(2).all(|w| w[0] < w[1]), "x stays ordered");
        assert_eq!(r.y.iter().copied().fold(f64::MIN, f64::max), 1000.0);
        assert_eq!(r.y.iter().copied().fold(f64::MAX, f64::min), -50.0);
        assert_eq!(r.x.first(), Some(&0.0));
        assert_eq!(r.x.last(), Some(&f64::from(n - 1)));
        assert_eq!(r.y.last(), ys.last());
        // Zoomed in around the spike: exact points, plus one neighbour beyond each edge.
        let z = reduce(&xs, &ys, 731_200.0, 731_300.0, 800);
        assert_eq!(z.count, 101);
        assert_eq!(z.x.len(), 103);
        assert_eq!(z.x[0], 731_199.0);
        assert!(z.y.contains(&1000.0));
    }

    #[test]
    fn reduction_of_small_and_empty_series_is_exact() {
        let r = reduce(&[1.0, 2.0, 3.0], &[5.0, 6.0, 7.0], 0.0, 10.0, 100);
        assert_eq!(r.x, [1.0, 2.0, 3.0]);
        assert_eq!(r.y, [5.0, 6.0, 7.0]);
        assert_eq!(reduce(&[], &[], 0.0, 1.0, 10), Reduced::default());
        let flat = reduce(&[2.0; 50], &[1.0; 50], 2.0, 2.0, 3);
        assert!(flat.x.len() <= 12);
    }

    #[tokio::test]
    async fn the_cache_reads_only_new_lines() {
        let cache = SeriesCache::new(1 << 20);
        let reads = std::sync::Mutex::new(Vec::new());
        let lines: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"_step":{i},"m":{i}}}"#))
            .collect();
        let read = |from: i64, to: i64| {
            reads.lock().unwrap().push(from);
            let picked: Vec<String> = lines
                .iter()
                .skip(from as usize)
                .take((to - from) as usize)
                .cloned()
                .collect();
            let text: Vec<String> = picked
                .iter()
                .enumerate()
                .map(|(i, line)| format!("{} {line}", from + i as i64))
                .collect();
            let out = (!picked.is_empty()).then(|| Joined::new(text.join("\n")));
            async move { Ok::<_, ()>(out) }
        };
        let columns = cache.columns(1, Source::History, 6, read).await.unwrap();
        assert_eq!(columns.next_line, 6);
        assert_eq!(columns.column("m").unwrap().values.len(), 6);
        drop(columns);
        let columns = cache.columns(1, Source::History, 10, read).await.unwrap();
        assert_eq!(columns.column("m").unwrap().values.len(), 10);
        drop(columns);
        let columns = cache.columns(1, Source::History, 10, read).await.unwrap();
        drop(columns);
        assert_eq!(*reads.lock().unwrap(), [0, 6]);
    }
}
