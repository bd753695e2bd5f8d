//! CSV exports (docs/RULES.md R16.11): `Accept: text/csv` on a list answers RFC 4180 CSV — a
//! header row, then one row per item, each field the value the JSON shows of it — with the same
//! filters and tenancy. A long export is not built in memory: the handler answers the first
//! page, and [`CsvPages`] rides on the response for the sender to write the rest a page at a
//! time as the client reads it.

use std::sync::Arc;

use http::{Response, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, MAX_LIMIT, Resp};
use crate::error::{ApiError, ApiResult};
use crate::platform::storage::{Database, Storage};

/// The media type of an export.
pub(crate) const TEXT_CSV: &str = "text/csv; charset=utf-8";

type NextPage = dyn Fn(&dyn Database, &str) -> ApiResult<(Vec<u8>, Option<String>)> + Send + Sync;

/// The rest of a CSV body after the response's own bytes: pages read from `cursor` on, each
/// until the last says there is no next.
#[derive(Clone)]
pub struct CsvPages {
    next: Arc<NextPage>,
    cursor: String,
}

impl CsvPages {
    /// Writes every further page to `sink`, a page at a time, until the last or until `sink`
    /// refuses one (the client went away); whether all of it was written. A page that cannot be
    /// read ends the body early: the client sees it incomplete.
    pub fn write_rest(&self, storage: &Storage, mut sink: impl FnMut(&[u8]) -> bool) -> bool {
        let mut cursor = self.cursor.clone();
        loop {
            let page = storage.db().and_then(|db| (self.next)(db, &cursor));
            match page {
                Ok((bytes, next)) => {
                    if !sink(&bytes) {
                        return false;
                    }
                    match next {
                        Some(n) => cursor = n,
                        None => return true,
                    }
                }
                Err(e) => {
                    eprintln!("internal error: a page of an export: {}", e.detail);
                    return false;
                }
            }
        }
    }
}

impl std::fmt::Debug for CsvPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvPages")
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl Ctx<'_> {
    /// Whether the client asked for CSV: `text/csv` in `Accept` with a weight above zero and at
    /// least JSON's (listed first on a tie).
    pub(crate) fn wants_csv(&self) -> bool {
        let Some(accept) = self.header("accept") else {
            return false;
        };
        let mut csv: Option<(f32, usize)> = None;
        let mut json: Option<(f32, usize)> = None;
        for (i, range) in accept.split(',').enumerate() {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "text/csv" => csv = Some((q, i)),
                "application/json" | "application/*" | "*/*" if json.is_none_or(|j| q > j.0) => {
                    json = Some((q, i));
                }
                _ => {}
            }
        }
        match (csv, json) {
            (Some((c, _)), _) if c <= 0.0 => false,
            (Some(_), None) => true,
            (Some((c, ci)), Some((j, ji))) => c > j || (c == j && ci < ji),
            (None, _) => false,
        }
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, its quotes
/// doubled.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A JSON value as a CSV field: text as it is, numbers and booleans as JSON writes them, null
/// empty, objects and arrays as their JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => field(s),
        other => field(&other.to_string()),
    }
}

/// The CSV rows of `items` (CRLF after each), with the header row first when `header`.
pub(crate) fn rows<T: Serialize>(
    columns: &[&str],
    items: &[T],
    header: bool,
) -> ApiResult<Vec<u8>> {
    let mut out = String::new();
    if header {
        out.push_str(&columns.join(","));
        out.push_str("\r\n");
    }
    for item in items {
        let value = serde_json::to_value(item).map_err(ApiError::internal)?;
        let line: Vec<String> = columns.iter().map(|c| cell(&value[*c])).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(out.into_bytes())
}

/// The next page's cursor from `EXPORT_PAGE + 1` fetched items (the extra one only says there
/// is more): the last kept item's `id`.
pub(crate) fn next_of<T>(items: &mut Vec<T>, id: impl Fn(&T) -> String) -> Option<String> {
    if items.len() > EXPORT_PAGE {
        items.truncate(EXPORT_PAGE);
        items.last().map(id)
    } else {
        None
    }
}

/// A whole export in one piece (a list the handler holds anyway).
pub(crate) fn whole<T: Serialize>(columns: &[&str], items: &[T]) -> ApiResult<Resp> {
    respond(rows(columns, items, true)?, None)
}

/// How many items each page of a paged export reads.
pub(crate) const EXPORT_PAGE: usize = MAX_LIMIT;

/// A paged export: `page(db, cursor)` reads up to [`EXPORT_PAGE`] items after `cursor` (`None`:
/// from the start) and the cursor of the next page, if any. The first page answers now; the
/// rest follow as the sender writes them.
pub(crate) fn paged<T, F>(
    db: &dyn Database,
    columns: &'static [&'static str],
    page: F,
) -> ApiResult<Resp>
where
    T: Serialize,
    F: Fn(&dyn Database, Option<&str>) -> ApiResult<(Vec<T>, Option<String>)>
        + Send
        + Sync
        + 'static,
{
    let read = move |db: &dyn Database, cursor: Option<&str>| {
        let (items, next) = page(db, cursor)?;
        Ok::<_, ApiError>((rows(columns, &items, cursor.is_none())?, next))
    };
    let (first, next) = read(db, None)?;
    let rest = next.map(|cursor| CsvPages {
        cursor,
        next: Arc::new(move |db: &dyn Database, cursor: &str| read(db, Some(cursor))),
    });
    respond(first, rest)
}

fn respond(body: Vec<u8>, rest: Option<CsvPages>) -> ApiResult<Resp> {
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, TEXT_CSV)
        .body(body)
        .map_err(ApiError::internal)?;
    if let Some(rest) = rest {
        response.extensions_mut().insert(rest);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\r\nlines"), "\"two\r\nlines\"");
        let items = [serde_json::json!({"a": "x,y", "b": 2, "c": null, "d": true})];
        let csv = rows(&["a", "b", "c", "d"], &items, true).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "a,b,c,d\r\n\"x,y\",2,,true\r\n"
        );
    }
}
