//! Usage records in the database. A record's identity (instance, item, window) is its primary
//! key, so a retried push counts once; amounts are integer mantissas with a scale, so SQLite sums
//! them exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::metering::{Stored, StoredUsage, UsageRecord, amount};
use crate::orders::instance;
use crate::platform::clock::{self, rfc3339};
use crate::platform::storage::{Database, Dialect, Row, StorageError, Value as SqlValue};
use crate::sales::ReportingMethod;

/// When the instance was released (Unix seconds), if it was, and the start of its first period
/// not yet billed (its billing cursor), if it has one: what closes it to usage, in one query.
/// Inside the caller's transaction; on PostgreSQL the instance's gate and both rows are held
/// (shared) until it ends, so a release or a bill run of the instance waits for the records to
/// commit, and they for it (ARCHITECTURE.md, Concurrency).
pub(crate) fn open_until(
    db: &dyn Database,
    instance_id: &str,
) -> ApiResult<(Option<i64>, Option<i64>)> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT (SELECT unixepoch(released_at) FROM instances WHERE id = ?1),
                    (SELECT next_period_start FROM billing_cursors WHERE instance_id = ?1)"
        }
        // The gate before each row lock: it is a condition of the row's scan, which PostgreSQL
        // evaluates before it locks the row the scan found.
        Dialect::Postgres => {
            "SELECT (SELECT CAST(floor(extract(epoch FROM CAST(released_at AS TIMESTAMPTZ))) AS BIGINT)
                     FROM instances
                     WHERE id = ?1 AND pg_advisory_xact_lock_shared(CAST(?2 AS BIGINT)) IS NOT NULL
                     FOR SHARE),
                    (SELECT next_period_start FROM billing_cursors
                     WHERE instance_id = ?1
                       AND pg_advisory_xact_lock_shared(CAST(?2 AS BIGINT)) IS NOT NULL
                     FOR SHARE)"
        }
    };
    let mut params = vec![instance_id.into()];
    if db.dialect() == Dialect::Postgres {
        params.push(instance::gate_key(instance_id).into());
    }
    let rows = db.execute(sql, &params)?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::internal("a scalar query returned no row"))?;
    Ok((row.opt_int(0)?, row.opt_int(1)?))
}

/// Records arriving together — one push, one platform report, one bill run's measurements —
/// and where they came from.
pub(crate) struct Arrival<'a> {
    pub(crate) instance_id: &'a str,
    pub(crate) records: &'a [UsageRecord],
    /// Who reported them: the provider or one of the platform's sources.
    pub(crate) source: &'a str,
    /// The request that brought them: a stored record keeps it, so a push can tell its own
    /// records from those stored before it.
    pub(crate) request_id: &'a str,
    pub(crate) received_at: DateTime<Utc>,
}

/// The head of both inserts: the arrival's records as rows of `usage_records`, from their JSON
/// parameter `?5` ([`Arrival::parameters`]), followed by each insert's own `WHERE`.
const INSERT_ARRIVAL: &str = "INSERT INTO usage_records (instance_id, item_code, start_time,
        end_time, value, scale, period_start, source, request_id, received_at)
    SELECT ?1, r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4,
           r.value ->> 5, ?2, ?3, ?4
    FROM json_each(?5) AS r";

/// [`INSERT_ARRIVAL`] in PostgreSQL's words: `->>` gives text there, cast to the columns' type.
const INSERT_ARRIVAL_POSTGRES: &str = "INSERT INTO usage_records (instance_id, item_code,
        start_time, end_time, value, scale, period_start, source, request_id, received_at)
    SELECT ?1, r.value ->> 0, CAST(r.value ->> 1 AS BIGINT), CAST(r.value ->> 2 AS BIGINT),
           CAST(r.value ->> 3 AS BIGINT), CAST(r.value ->> 4 AS BIGINT),
           CAST(r.value ->> 5 AS BIGINT), ?2, ?3, ?4
    FROM json_array_elements(CAST(CAST(?5 AS TEXT) AS JSON)) AS r";

fn insert_arrival(db: &dyn Database) -> &'static str {
    match db.dialect() {
        Dialect::Sqlite => INSERT_ARRIVAL,
        Dialect::Postgres => INSERT_ARRIVAL_POSTGRES,
    }
}

impl Arrival<'_> {
    /// `?1` to `?5` of [`INSERT_ARRIVAL`]. The rows travel as one JSON parameter,
    /// `[item, start, end, value, scale, period start]` each, sorted by their identity: two
    /// arrivals with records in common insert them, and so wait for each other's, in one order
    /// (on PostgreSQL an insert waits for an uncommitted row of its key), never each holding one
    /// the other waits for. The sort is stable: of two records of one identity, the first pushed
    /// is still the one inserted.
    fn parameters(&self) -> Vec<SqlValue> {
        let mut records: Vec<&UsageRecord> = self.records.iter().collect();
        records.sort_by(|a, b| {
            (&a.item_code, a.start_time, a.end_time).cmp(&(&b.item_code, b.start_time, b.end_time))
        });
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
        vec![
            self.instance_id.into(),
            self.source.into(),
            self.request_id.into(),
            rfc3339(self.received_at).into(),
            serde_json::Value::from(rows).to_string().into(),
        ]
    }
}

/// Stores a push in one statement when it is the usual one — every record new, none of its
/// windows closed by a release or a bill run, its instance not suspended (a suspension closes
/// some windows and not others: the transaction tells which) — and answers `None`, having
/// changed nothing,
/// otherwise: the caller then takes [`insert`]'s path, which tells duplicates from conflicts
/// and names what is wrong.
///
/// One statement is its own transaction: SQLite takes the write lock when it starts and
/// releases it at its commit, so the lock is held for the insert and the log's sync alone, with
/// no round trip to the component in between (through Spin each statement is a host call, and
/// under load each one waits for a CPU). It inserts every record or none: the release and bill
/// run checks are on the push as a whole (its latest window start and its earliest period), and
/// a record whose identity is already stored, or twice in the push, fails the whole statement
/// on the primary key; and so is the check that its items are still pushed by the provider
/// (the provider may have set another reporting method since the push was validated).
pub(crate) fn insert_if_all_new(db: &dyn Database, arrival: &Arrival) -> ApiResult<Option<Stored>> {
    let records = arrival.records;
    let (Some(latest_start), Some(earliest_period)) = (
        records.iter().map(|r| r.start_time).max(),
        records.iter().map(|r| r.period_start).min(),
    ) else {
        return Ok(None);
    };
    let mut parameters = arrival.parameters();
    parameters.extend([
        latest_start.into(),
        earliest_period.into(),
        codes_of(records).into(),
        ReportingMethod::ServiceProvider.stored().into(),
    ]);
    if db.dialect() == Dialect::Postgres {
        parameters.push(instance::gate_key(arrival.instance_id).into());
    }
    let sql = match db.dialect() {
        Dialect::Sqlite => format!(
            "{INSERT_ARRIVAL}
             WHERE NOT EXISTS (SELECT 1 FROM instances
                               WHERE id = ?1
                                 AND (unixepoch(released_at) <= ?6 OR status = 'suspended'))
               AND NOT EXISTS (SELECT 1 FROM billing_cursors
                               WHERE instance_id = ?1 AND next_period_start > ?7)
               AND NOT EXISTS ({} AND s.reporting IS NOT ?9)",
            items(db, "?1", "?8")
        ),
        // Writers run at once here: the statement holds the instance's gate and then locks
        // its row and its cursor (all shared, so pushes do not wait for each other), and reads
        // them as they are once locked. A release or a bill run of the instance waits for this
        // statement, and this one for them (ARCHITECTURE.md, Concurrency). The gate is a
        // condition of each row's scan: PostgreSQL evaluates it before it locks the row found.
        // The items' settings are locked shared too: a change of their reporting method waits
        // for the push, or the push reads the change.
        Dialect::Postgres => format!(
            "WITH instance AS (SELECT released_at, status FROM instances
                               WHERE id = ?1
                                 AND pg_advisory_xact_lock_shared(CAST(?10 AS BIGINT)) IS NOT NULL
                               FOR SHARE),
                  cursor AS (SELECT next_period_start FROM billing_cursors
                             WHERE instance_id = ?1
                               AND pg_advisory_xact_lock_shared(CAST(?10 AS BIGINT)) IS NOT NULL
                             FOR SHARE),
                  items AS ({} FOR SHARE)
             {INSERT_ARRIVAL_POSTGRES}
             WHERE NOT EXISTS (SELECT 1 FROM instance WHERE CAST(floor(extract(epoch FROM
                                   CAST(released_at AS TIMESTAMPTZ))) AS BIGINT) <= ?6
                                   OR status = 'suspended')
               AND NOT EXISTS (SELECT 1 FROM cursor WHERE next_period_start > ?7)
               AND NOT EXISTS (SELECT 1 FROM items WHERE reporting IS DISTINCT FROM ?9)",
            items(db, "?1", "?8")
        ),
    };
    match db.written(&sql, &parameters) {
        Ok(n) if n == records.len() as u64 => Ok(Some(Stored {
            accepted: records.len(),
            duplicates: 0,
        })),
        Ok(0) => Ok(None),
        Err(e) if e.is_unique_violation() => Ok(None),
        Ok(n) => Err(ApiError::internal(format!(
            "{n} of {} records stored by an all-or-nothing insert",
            records.len()
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The sales settings (`s`: its code, its reporting method) of the instance's product's items
/// whose codes are in a JSON array, `instance` and `codes` the placeholders of the two: how
/// each item is reported now.
fn items(db: &dyn Database, instance: &str, codes: &str) -> String {
    let codes = match db.dialect() {
        Dialect::Sqlite => format!("SELECT c.value FROM json_each({codes}) AS c"),
        Dialect::Postgres => {
            format!(
                "SELECT c FROM json_array_elements_text(CAST(CAST({codes} AS TEXT) AS JSON)) AS c"
            )
        }
    };
    format!(
        "SELECT s.code, s.reporting FROM billable_item_settings AS s
         WHERE s.product_id = (SELECT product_id FROM instances WHERE id = {instance})
           AND s.code IN ({codes})"
    )
}

/// The item codes of `records`, each once, as a JSON array.
fn codes_of(records: &[UsageRecord]) -> String {
    let codes: BTreeSet<&str> = records.iter().map(|r| r.item_code.as_str()).collect();
    serde_json::Value::from(codes.into_iter().collect::<Vec<_>>()).to_string()
}

/// Which of these records' items the instance's product has reported by `method` now, inside
/// the caller's transaction; on PostgreSQL their settings are held (shared) until it ends, so
/// a change of their method waits for it, or it reads the change.
pub(crate) fn items_reported_by(
    db: &dyn Database,
    instance_id: &str,
    records: &[UsageRecord],
    method: &ReportingMethod,
) -> ApiResult<HashSet<String>> {
    let lock = match db.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR SHARE",
    };
    let rows = db.execute(
        &format!("{} AND s.reporting = ?3{lock}", items(db, "?1", "?2")),
        &[
            instance_id.into(),
            codes_of(records).into(),
            method.stored().into(),
        ],
    )?;
    rows.iter().map(|r| Ok(r.text(0)?)).collect()
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
pub(crate) fn insert(db: &dyn Database, arrival: &Arrival) -> ApiResult<Stored> {
    let &Arrival {
        instance_id,
        records,
        source,
        request_id,
        ..
    } = arrival;
    let inserted = db.execute(
        &format!(
            "{} WHERE true
             ON CONFLICT (instance_id, item_code, source, start_time, end_time) DO NOTHING
             RETURNING 0",
            insert_arrival(db)
        ),
        &arrival.parameters(),
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
    let identities_of = match db.dialect() {
        Dialect::Sqlite => "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?3)",
        Dialect::Postgres => {
            "SELECT value ->> 0, CAST(value ->> 1 AS BIGINT), CAST(value ->> 2 AS BIGINT)
             FROM json_array_elements(CAST(CAST(?3 AS TEXT) AS JSON))"
        }
    };
    db.execute(
        &format!(
            "SELECT item_code, start_time, end_time, value, scale, request_id FROM usage_records
             WHERE instance_id = ?1 AND source = ?2
               AND (item_code, start_time, end_time) IN ({identities_of})"
        ),
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

/// A page of an instance's records after a cursor, read in the order of
/// `usage_records_in_order`: from the cursor on, never the range sorted whole.
pub(crate) const USAGE_PAGE: &str =
    "SELECT item_code, start_time, end_time, value, period_start, source, received_at, scale
     FROM usage_records WHERE instance_id = ?1 AND period_start >= ?2 AND period_start < ?3
       AND (period_start, item_code, source, start_time, end_time) > (?4, ?5, ?6, ?7, ?8)
       AND (CAST(?10 AS TEXT) IS NULL OR item_code = ?10)
     ORDER BY period_start, item_code, source, start_time, end_time LIMIT ?9";

/// Up to `limit` records of an instance whose period starts in `[from, to)` (of `item` only,
/// when given), after `after`, in the order (period, item, source, window), with each one's
/// place.
pub(crate) fn records(
    db: &dyn Database,
    instance_id: &str,
    (from, to): (i64, i64),
    item: Option<&str>,
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
        USAGE_PAGE,
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
            item.into(),
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
                period_start: clock::from_unix(key.period_start)?,
                source: key.source.clone(),
                received_at: clock::stored(&r.text(6)?)?,
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
        "SELECT period_start, item_code, scale, CAST(SUM(value / 1000000000) AS BIGINT),
                CAST(SUM(value % 1000000000) AS BIGINT)
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
                    "SELECT instance_id, item_code, scale, CAST(SUM(value / 1000000000) AS BIGINT),
                            CAST(SUM(value % 1000000000) AS BIGINT) FROM usage_records
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

#[cfg(test)]
mod tests {
    //! The one-statement path is checked here, on the store, because its refusals matter when
    //! something changed after the push was validated (a release, a bill run), which a request
    //! cannot stage between its own validation and its insert.
    use super::*;

    /// A usage page is read in index order from its cursor, never sorted whole.
    #[test]
    fn a_usage_page_is_read_in_index_order() {
        let plan = crate::platform::storage::query_plan(USAGE_PAGE, 10);
        assert!(
            plan.contains("USING INDEX usage_records_in_order"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
    use crate::platform::storage::Backend;
    use crate::platform::storage::native::NativeBackend;

    const INSTANCE: &str = "ins-1";
    const HOUR: i64 = 3_600;
    /// 2026-03-27T07:00:00Z: the period the records are in.
    const PERIOD: i64 = 1_774_594_800;

    /// A migrated database holding one running instance and none of its usage. Foreign keys are
    /// off: the instance's order, product and principals do not matter to these statements.
    fn database() -> (tempfile::TempDir, Box<dyn Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = NativeBackend::new(dir.path().join("db.sqlite"))
            .open_db()
            .unwrap();
        crate::platform::storage::migrations::migrate(db.as_ref()).unwrap();
        db.execute("PRAGMA foreign_keys = OFF", &[]).unwrap();
        db.execute(
            "INSERT INTO instances (id, order_id, owner_id, product_id, provider_id, template_id,
                                    region, status, test, created_at)
             VALUES (?1, 'ord-1', 'usr-c', 'prd-1', 'usr-p', 'tpl-1', 'r', 'running', 0,
                     '2026-03-27T06:00:00Z')",
            &[INSTANCE.into()],
        )
        .unwrap();
        (dir, db)
    }

    /// Ten one-minute records of the period from `from` minutes past its start.
    fn records(from: i64) -> Vec<UsageRecord> {
        (from..from + 10)
            .map(|minute| UsageRecord {
                origin: format!("Metering[{minute}]"),
                item_code: "requests".into(),
                start_time: PERIOD + minute * 60,
                end_time: PERIOD + minute * 60 + 60,
                value: minute,
                scale: 0,
                period_start: PERIOD,
            })
            .collect()
    }

    fn insert_all_new(db: &dyn Database, records: &[UsageRecord]) -> Option<Stored> {
        let arrival = Arrival {
            instance_id: INSTANCE,
            records,
            source: "ServiceProvider",
            request_id: "req-1",
            received_at: Utc::now(),
        };
        insert_if_all_new(db, &arrival).unwrap()
    }

    fn stored(db: &dyn Database) -> i64 {
        db.execute("SELECT COUNT(*) FROM usage_records", &[])
            .unwrap()[0]
            .int(0)
            .unwrap()
    }

    #[test]
    fn new_records_of_an_open_period_go_in_at_once() {
        let (_dir, db) = database();
        let stored_push = insert_all_new(db.as_ref(), &records(0));
        assert_eq!(
            stored_push,
            Some(Stored {
                accepted: 10,
                duplicates: 0
            })
        );
        assert_eq!(stored(db.as_ref()), 10);
    }

    #[test]
    fn a_release_before_the_latest_window_stores_none_of_the_push() {
        let (_dir, db) = database();
        // Released at 07:09: the push's last window starts then.
        db.execute(
            "UPDATE instances SET status = 'released', released_at = '2026-03-27T07:09:00Z'",
            &[],
        )
        .unwrap();
        assert_eq!(insert_all_new(db.as_ref(), &records(0)), None);
        assert_eq!(stored(db.as_ref()), 0);
        // Released a minute later, every window starts before it.
        db.execute(
            "UPDATE instances SET released_at = '2026-03-27T07:10:00Z'",
            &[],
        )
        .unwrap();
        assert!(insert_all_new(db.as_ref(), &records(0)).is_some());
    }

    #[test]
    fn a_billed_period_stores_none_of_the_push() {
        let (_dir, db) = database();
        db.execute(
            "INSERT INTO billing_cursors (instance_id, next_period_start) VALUES (?1, ?2)",
            &[INSTANCE.into(), (PERIOD + HOUR).into()],
        )
        .unwrap();
        assert_eq!(insert_all_new(db.as_ref(), &records(0)), None);
        assert_eq!(stored(db.as_ref()), 0);
        db.execute(
            "UPDATE billing_cursors SET next_period_start = ?1",
            &[PERIOD.into()],
        )
        .unwrap();
        assert!(insert_all_new(db.as_ref(), &records(0)).is_some());
    }

    #[test]
    fn a_record_already_stored_or_twice_in_the_push_stores_none_of_it() {
        let (_dir, db) = database();
        insert_all_new(db.as_ref(), &records(0)).unwrap();
        // Minutes 5 to 14: the first five are stored.
        assert_eq!(insert_all_new(db.as_ref(), &records(5)), None);
        assert_eq!(stored(db.as_ref()), 10);
        // Minutes 20 to 29 and minute 20 again, with another value.
        let mut twice = records(20);
        twice.push(UsageRecord {
            value: 99,
            ..twice[0].clone()
        });
        assert_eq!(insert_all_new(db.as_ref(), &twice), None);
        assert_eq!(stored(db.as_ref()), 10);
    }
}
