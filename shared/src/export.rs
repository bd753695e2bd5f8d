//! CSV exports (docs/RULES.md R15.11), for the API (`Accept: text/csv`) and the console's
//! downloads: RFC 4180 CSV — a header row, then one row per item, each field the value the JSON
//! shows of it. A long export is not built in memory: the first page is the response's body, and
//! [`CsvPages`] rides on the response for the sender to write the rest a page at a time as the
//! client reads it.

use std::sync::Arc;

use http::{Response, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use crate::billing::{self, BillFilter};
use crate::error::{ApiError, ApiResult};
use crate::identity::Principal;
use crate::metering;
use crate::platform::storage::{Database, Storage};
use crate::settlement::Statement;

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
fn next_of<T>(items: &mut Vec<T>, id: impl Fn(&T) -> String) -> Option<String> {
    if items.len() > EXPORT_PAGE {
        items.truncate(EXPORT_PAGE);
        items.last().map(id)
    } else {
        None
    }
}

/// A whole export in one piece (a list the caller holds anyway).
fn whole<T: Serialize>(columns: &[&str], items: &[T]) -> ApiResult<Resp> {
    respond(rows(columns, items, true)?, None)
}

/// How many items each page of a paged export reads (the API's largest page).
const EXPORT_PAGE: usize = 500;

/// A response whose body is CSV.
type Resp = Response<Vec<u8>>;

/// A paged export: `page(db, cursor)` reads up to [`EXPORT_PAGE`] items after `cursor` (`None`:
/// from the start) and the cursor of the next page, if any. The first page answers now; the
/// rest follow as the sender writes them.
fn paged<T, F>(db: &dyn Database, columns: &'static [&'static str], page: F) -> ApiResult<Resp>
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

/// A bill export's columns: the bill's fields as the JSON shows them, its lines aside.
const BILL_COLUMNS: &[&str] = &[
    "id",
    "instance_id",
    "owner_id",
    "provider_id",
    "product_id",
    "period_start",
    "period_end",
    "currency",
    "product_fees",
    "resource_fees",
    "total",
    "test",
    "pricing_version",
    "created_at",
];

/// A usage export's columns: each record's fields as the JSON shows them.
const USAGE_COLUMNS: &[&str] = &[
    "item_code",
    "start_time",
    "end_time",
    "value",
    "period_start",
    "source",
    "received_at",
];

/// A statement export's columns: each provider's statement as the JSON shows it, its products
/// aside.
const STATEMENT_COLUMNS: &[&str] = &[
    "id",
    "provider_id",
    "month",
    "status",
    "currency",
    "rate",
    "gross",
    "commission",
    "net",
    "bill_count",
    "write_off_count",
    "closed_at",
    "paid_at",
    "payout_reference",
];

/// The bills the caller may see under `filter` (the list's filters and tenancy), from after
/// `start` (a list cursor) on, every page of them.
pub(crate) fn bills(
    db: &dyn Database,
    caller: Principal,
    filter: BillFilter,
    start: Option<String>,
) -> ApiResult<Resp> {
    paged(db, BILL_COLUMNS, move |db, cursor| {
        let after = cursor.or(start.as_deref());
        let mut items = billing::list(db, &caller, &filter, after, EXPORT_PAGE + 1)?;
        let next = next_of(&mut items, |b| b.id.clone());
        Ok((items, next))
    })
}

/// An instance's usage records whose period starts in `range`, as the caller may see them,
/// from after `start` (a usage cursor) on, every page of them.
pub(crate) fn usage(
    db: &dyn Database,
    caller: Principal,
    instance_id: &str,
    range: (i64, i64),
    start: Option<String>,
) -> ApiResult<Resp> {
    let instance_id = instance_id.to_owned();
    paged(db, USAGE_COLUMNS, move |db, cursor| {
        let after = cursor.or(start.as_deref());
        let usage = metering::usage(db, &caller, &instance_id, range, after, EXPORT_PAGE)?;
        Ok((usage.records, usage.next_cursor))
    })
}

/// A month's statements (few: one per provider), in one piece.
pub(crate) fn statements(items: &[Statement]) -> ApiResult<Resp> {
    whole(STATEMENT_COLUMNS, items)
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
