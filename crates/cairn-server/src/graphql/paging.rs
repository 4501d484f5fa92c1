//! Paging, the same on every listing: opaque cursors, the window of a listing one
//! request covers, and relay's `pageInfo`. Also lenient JSON-line parsing (history lines
//! may hold `NaN`), shared by the history and file readers. Pure functions, no IO.
//!
//! Input: the client's `after` cursor and page size. Output: one page of edges, each with
//! its own cursor (`Runs` and `RunFiles` continue from the last edge's cursor), and a
//! `pageInfo` (relay listings continue from `endCursor`); both conventions hold on every
//! listing.

use async_graphql::SimpleObject;
use base64::Engine as _;
use serde_json::{Map, Value};

/// An opaque cursor for position `n` of a listing.
pub(super) fn cursor(n: i64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("cursor:{n}"))
}

/// The position inside a cursor made by [`cursor`]; `None` for a missing or foreign one.
pub(super) fn decode_cursor(cursor: Option<&str>) -> Option<i64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor?)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("cursor:")?
        .parse()
        .ok()
}

/// Page size when the client names none.
const DEFAULT_PAGE: usize = 50;
/// Largest page a client can ask for.
const MAX_PAGE: usize = 10_000;

/// Relay's page information.
#[derive(SimpleObject, Debug, Clone)]
pub(super) struct PageInfo {
    pub end_cursor: Option<String>,
    pub start_cursor: Option<String>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// Which slice of `total` items one request covers.
#[derive(Debug, PartialEq)]
pub(super) struct Window {
    pub start: usize,
    pub end: usize,
}

impl Window {
    /// The items after `after` (a cursor made by `paging::cursor` of an index), at most
    /// `first` of them.
    pub(super) fn new(total: usize, after: Option<&str>, first: Option<i32>) -> Window {
        let start = decode_cursor(after)
            .map(|n| usize::try_from(n.saturating_add(1)).unwrap_or(0))
            .unwrap_or(0)
            .min(total);
        let size = first
            .map(|f| usize::try_from(f).unwrap_or(0))
            .unwrap_or(DEFAULT_PAGE)
            .min(MAX_PAGE);
        Window {
            start,
            end: start.saturating_add(size).min(total),
        }
    }

    /// The items of this window, each with its cursor (`items` is the whole listing).
    pub(super) fn edges<T>(&self, items: Vec<T>) -> impl Iterator<Item = (T, String)> + use<T> {
        items
            .into_iter()
            .enumerate()
            .skip(self.start)
            .take(self.end - self.start)
            .map(|(i, item)| (item, cursor(i as i64)))
    }

    /// The page information of this window over `total` items.
    pub(super) fn page_info(&self, total: usize) -> PageInfo {
        let nonempty = self.end > self.start;
        PageInfo {
            start_cursor: nonempty.then(|| cursor(self.start as i64)),
            end_cursor: nonempty.then(|| cursor(self.end as i64 - 1)),
            has_next_page: self.end < total,
            has_previous_page: self.start > 0,
        }
    }
}

/// One page of a whole listing: the edges `edge` makes of the items in the window (each
/// with its cursor), the page information, and the listing's size.
pub(super) fn page<T, E>(
    items: Vec<T>,
    after: Option<&str>,
    first: Option<i32>,
    edge: impl FnMut((T, String)) -> E,
) -> (Vec<E>, PageInfo, i64) {
    let total = items.len();
    let window = Window::new(total, after, first);
    let page_info = window.page_info(total);
    (
        window.edges(items).map(edge).collect(),
        page_info,
        total as i64,
    )
}

/// A history or events line as a JSON object. W&B's lines may hold `NaN`, `Infinity` and
/// `-Infinity`, which JSON lacks: those become the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
pub(super) fn parse_line(text: &str) -> Option<Map<String, Value>> {
    match cairn_proto::value::to_serde_json(text)? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(Some(&cursor(41))), Some(41));
        assert_eq!(decode_cursor(Some("garbage!")), None);
        assert_eq!(decode_cursor(None), None);
    }

    #[test]
    fn lines_with_nan_parse() {
        let map = parse_line(
            r#"{"loss":NaN,"x":-Infinity,"s":"NaN in text","_step":1,"loss_NaN_count":3,"deep":{"a":[Infinity]}}"#,
        )
        .unwrap();
        assert_eq!(map["loss"], "NaN");
        assert_eq!(map["x"], "-Infinity");
        assert_eq!(map["s"], "NaN in text");
        assert_eq!(map["_step"], 1);
        assert_eq!(map["loss_NaN_count"], 3);
        assert_eq!(map["deep"], serde_json::json!({"a": ["Infinity"]}));
        assert!(parse_line("[1]").is_none());
        assert!(parse_line("{").is_none());
    }

    #[test]
    fn windows_page_through() {
        let w = Window::new(5, None, Some(2));
        assert_eq!(w, Window { start: 0, end: 2 });
        let info = w.page_info(5);
        assert!(info.has_next_page);
        let w = Window::new(5, info.end_cursor.as_deref(), Some(2));
        assert_eq!(w, Window { start: 2, end: 4 });
        let w = Window::new(5, w.page_info(5).end_cursor.as_deref(), Some(2));
        assert_eq!(w, Window { start: 4, end: 5 });
        assert!(!w.page_info(5).has_next_page);
        // A foreign cursor starts over; a negative page size is empty.
        assert_eq!(
            Window::new(5, Some("???"), None),
            Window { start: 0, end: 5 }
        );
        assert_eq!(Window::new(5, None, Some(-3)), Window { start: 0, end: 0 });
        assert_eq!(Window::new(0, None, None).page_info(0).end_cursor, None);
    }
}
