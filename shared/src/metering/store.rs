//! Usage records in the database. A record's identity (instance, item, window) is its primary
//! key, so a retried push counts once; amounts are integer mantissas with a scale, so SQLite sums
//! them exactly.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::metering::{Stored, StoredUsage, UsageRecord, amount};
use crate::platform::clock::rfc3339;
use crate::platform::storage::{Database, Row, StorageError, Value as SqlValue};

/// When the instance was released (Unix seconds), if it was, and the start of its first period
/// not yet billed (its billing cursor), if it has one: what closes it to usage, in one query.
pub(crate) fn open_until(
    db: &dyn Database,
    instance_id: &str,
) -> ApiResult<(Option<i64>, Option<i64>)> {
    let rows = db.execute(
        "SELECT (SELECT unixepoch(released_at) FROM instances WHERE id = ?1),
                (SELECT next_period_start FROM billing_cursors WHERE instance_id = ?1)",
        &[instance_id.into()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::internal("a scalar query returned no row"))?;
    Ok((row.opt_int(0)?, row.opt_int(1)?))
}

/// Writes validated records. Must run in one transaction: a conflicting duplicate aborts the
/// whole push, naming the record.
///
/// The records go in with one `INSERT … SELECT … FROM json_each(?) … ON CONFLICT DO NOTHING`:
/// the rows travel as one JSON parameter, so the statement is short to parse and one value to
/// pass, whatever the push's size (a statement per record cost more to prepare than to run; a
/// hundred-row `VALUES` list, six hundred parameters to bind and its rows to return). Usually
/// every record is new, as the rows the insert returns say. Otherwise each record is compared with the row
/// stored for its identity: the one stored before, or the first of its identity in this push
/// (its `request_id` is this push's) — exactly as if the records were inserted one by one.
/// Every statement counts: this runs holding the database's write lock.
pub(crate) fn insert(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
    source: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Stored> {
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!([
                r.item_code,
                r.start_time,
                r.end_time,
                r.value,
                r.scale,
                r.period_start
            ])
        })
        .collect();
    let inserted = db.execute(
        "INSERT INTO usage_records (instance_id, item_code, start_time, end_time, value, scale,
                                   period_start, source, request_id, received_at)
         SELECT ?1, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4,
                r.value ->> 5, ?2, ?3, ?4
         FROM json_each(?5) AS r WHERE true
         ON CONFLICT (instance_id, item_code, source, start_time, end_time) DO NOTHING
         RETURNING 0",
        &[
            instance_id.into(),
            source.into(),
            request_id.into(),
            rfc3339(now).into(),
            serde_json::Value::from(rows).to_string().into(),
        ],
    )?;
    // A row per record inserted: counted here rather than by another statement, `changes()`.
    if inserted.len() == records.len() {
        return Ok(Stored {
            accepted: records.len(),
            duplicates: 0,
        });
    }
    let stored_rows = stored_values(db, instance_id, source, records)?;
    let mut stored = Stored {
        accepted: 0,
        duplicates: 0,
    };
    let mut first_of_push: HashSet<Identity> = HashSet::new();
    for r in records {
        let identity = (r.item_code.clone(), r.start_time, r.end_time);
        let (value, scale, by) = stored_rows
            .get(&identity)
            .cloned()
            .ok_or_else(|| ApiError::internal("a pushed record neither stored nor found"))?;
        if by == request_id && first_of_push.insert(identity) {
            stored.accepted += 1;
        } else if (value, scale) == (r.value, i64::from(r.scale)) {
            stored.duplicates += 1;
        } else {
            let stored_value = amount(value, scale);
            let mut e = ApiError::new(
                Code::DuplicateRecordConflict,
                format!(
                    "{} ({} {}–{}) was already reported as {stored_value}; a record cannot change",
                    r.origin, r.item_code, r.start_time, r.end_time,
                ),
            );
            e.errors.push(FieldError::new(
                r.origin.clone(),
                Code::DuplicateRecordConflict,
                format!(
                    "{} conflicts with the stored value {stored_value}",
                    r.item_code
                ),
            ));
            return Err(e);
        }
    }
    Ok(stored)
}

type Identity = (String, i64, i64);

/// The stored (value, scale, request id) of these records' identities, in one query.
fn stored_values(
    db: &dyn Database,
    instance_id: &str,
    source: &str,
    records: &[UsageRecord],
) -> ApiResult<HashMap<Identity, (i64, i64, String)>> {
    let identities: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!([r.item_code, r.start_time, r.end_time]))
        .collect();
    db.execute(
        "SELECT item_code, start_time, end_time, value, scale, request_id FROM usage_records
         WHERE instance_id = ?1 AND source = ?2 AND (item_code, start_time, end_time) IN
               (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?3))",
        &[
            instance_id.into(),
            source.into(),
            serde_json::Value::from(identities).to_string().into(),
        ],
    )?
    .iter()
    .map(|row| {
        Ok((
            (row.text(0)?, row.int(1)?, row.int(2)?),
            (row.int(3)?, row.int(4)?, row.text(5)?),
        ))
    })
    .collect::<Result<_, StorageError>>()
    .map_err(Into::into)
}

/// Where a page of usage records ends: the last record's place in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordKey {
    pub(crate) period_start: i64,
    pub(crate) item_code: String,
    pub(crate) source: String,
    pub(crate) start_time: i64,
    pub(crate) end_time: i64,
}

/// Up to `limit` records of an instance whose period starts in `[from, to)`, after `after`, in
/// the order (period, item, source, window), with each one's place.
pub(crate) fn records(
    db: &dyn Database,
    instance_id: &str,
    (from, to): (i64, i64),
    after: Option<&RecordKey>,
    limit: usize,
) -> ApiResult<Vec<(StoredUsage, RecordKey)>> {
    let after = after.cloned().unwrap_or(RecordKey {
        period_start: i64::MIN,
        item_code: String::new(),
        source: String::new(),
        start_time: i64::MIN,
        end_time: i64::MIN,
    });
    let rows = db.execute(
        "SELECT item_code, start_time, end_time, value, period_start, source, received_at, scale
         FROM usage_records WHERE instance_id = ?1 AND period_start >= ?2 AND period_start < ?3
           AND (period_start, item_code, source, start_time, end_time) > (?4, ?5, ?6, ?7, ?8)
         ORDER BY period_start, item_code, source, start_time, end_time LIMIT ?9",
        &[
            instance_id.into(),
            from.into(),
            to.into(),
            after.period_start.into(),
            after.item_code.into(),
            after.source.into(),
            after.start_time.into(),
            after.end_time.into(),
            (limit as i64).into(),
        ],
    )?;
    rows.iter()
        .map(|r| {
            let key = RecordKey {
                period_start: r.int(4)?,
                item_code: r.text(0)?,
                source: r.text(5)?,
                start_time: r.int(1)?,
                end_time: r.int(2)?,
            };
            let record = StoredUsage {
                item_code: key.item_code.clone(),
                start_time: key.start_time,
                end_time: key.end_time,
                value: amount(r.int(3)?, r.int(7)?),
                period_start: rfc3339(
                    DateTime::from_timestamp(key.period_start, 0).unwrap_or_default(),
                ),
                source: key.source.clone(),
                received_at: r.text(6)?,
            };
            Ok((record, key))
        })
        .collect()
}

/// Raw usage totals per (period start, item) of an instance, in the units it was reported in.
/// SQLite sums the integer mantissas per scale; the scales are combined here, exactly.
pub(crate) fn period_totals(
    db: &dyn Database,
    instance_id: &str,
    from: i64,
    to: i64,
) -> ApiResult<Vec<(i64, String, Decimal)>> {
    let rows = db.execute(
        "SELECT period_start, item_code, scale, SUM(value / 1000000000), SUM(value % 1000000000)
         FROM usage_records
         WHERE instance_id = ? AND period_start >= ? AND period_start < ?
         GROUP BY period_start, item_code, scale ORDER BY period_start, item_code",
        &[instance_id.into(), from.into(), to.into()],
    )?;
    let mut out: Vec<(i64, String, Decimal)> = Vec::new();
    for r in &rows {
        let (start, code, total) = (r.int(0)?, r.text(1)?, split_sum(r, 3, r.int(2)?)?);
        match out.last_mut() {
            Some((s, c, t)) if *s == start && *c == code => *t += total,
            _ => out.push((start, code, total)),
        }
    }
    Ok(out)
}

/// Raw usage totals per item of many (instance, period start) pairs, in the units they were
/// reported in: for each pair, the sums [`period_totals`] gives for that one period. One query
/// per period start and [`IDS_PER_QUERY`] instances (a bill run prices a whole batch at once,
/// and its instances mostly share a period); SQLite walks `usage_records_totals` in order, so
/// the GROUP BY needs no sort.
pub(crate) fn totals_of_periods(
    db: &dyn Database,
    periods: &[(&str, i64)],
) -> ApiResult<HashMap<(String, i64), HashMap<String, Decimal>>> {
    let mut by_start: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (id, start) in periods {
        by_start.entry(*start).or_default().push(id);
    }
    let mut out: HashMap<(String, i64), HashMap<String, Decimal>> = HashMap::new();
    for (start, ids) in by_start {
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let mut params: Vec<SqlValue> = Vec::with_capacity(1 + chunk.len());
            params.push(start.into());
            params.extend(chunk.iter().map(|id| SqlValue::from(*id)));
            let rows = db.execute(
                &format!(
                    "SELECT instance_id, item_code, scale, SUM(value / 1000000000),
                            SUM(value % 1000000000) FROM usage_records
                     WHERE period_start = ? AND instance_id IN ({})
                     GROUP BY instance_id, item_code, scale",
                    vec!["?"; chunk.len()].join(", ")
                ),
                &params,
            )?;
            for r in &rows {
                *out.entry((r.text(0)?, start))
                    .or_default()
                    .entry(r.text(1)?)
                    .or_default() += split_sum(r, 3, r.int(2)?)?;
            }
        }
    }
    Ok(out)
}

/// A sum of mantissas that SQLite computed in two halves (`SUM(value / 10^9)` and
/// `SUM(value % 10^9)`, at `col` and `col + 1`): each half stays far inside 64 bits however many
/// records there are, where one `SUM(value)` could overflow and fail the query. Joined exactly.
fn split_sum(row: &Row, col: usize, scale: i64) -> ApiResult<Decimal> {
    let mantissa = i128::from(row.int(col)?) * 1_000_000_000 + i128::from(row.int(col + 1)?);
    Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).unwrap_or(0))
        .map_err(|_| ApiError::internal("a usage total beyond 28 digits"))
}

/// Instances per totals query: below 999, the oldest SQLite limit on bound parameters.
const IDS_PER_QUERY: usize = 500;
