//! Commission rates, months, blocking periods and written statements in the database.
//! `settlement_months` has one row per month once it was first closed, holding the instants it
//! was frozen with; `settlements` is UNIQUE on (provider, month) and `statement_bills` on the
//! bill: each provider's statement of a month is written once, and each bill belongs to one
//! statement, however many closes race.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult};
use crate::money::Cents;
use crate::orders::ledger::ACCOUNT_CURRENCY;
use crate::platform::clock;
use crate::platform::storage::{Database, Row};
use crate::settlement::{
    Month, MonthStatus, ProductSettlement, RateChange, Span, Statement, WrittenOffPeriod,
};

fn decimal(text: &str) -> ApiResult<Decimal> {
    Decimal::from_str(text).map_err(ApiError::internal)
}

fn month(text: &str) -> ApiResult<Month> {
    Month::parse(text).map_err(ApiError::internal)
}

/// A provider's rate changes, oldest month first.
pub(crate) fn rate_changes(db: &dyn Database, provider_id: &str) -> ApiResult<Vec<RateChange>> {
    let rows = db.execute(
        "SELECT effective_from, rate, set_by, set_at FROM commission_rates
         WHERE provider_id = ? ORDER BY effective_from",
        &[provider_id.into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(RateChange {
                effective_from: month(&r.text(0)?)?,
                rate: r.opt_text(1)?.as_deref().map(decimal).transpose()?,
                set_by: r.text(2)?,
                set_at: clock::stored(&r.text(3)?)?,
            })
        })
        .collect()
}

/// The rate change in force for `month`: the latest from that month or before, if any (its
/// rate `None` when it returned the provider to the deployment's).
pub(crate) fn rate_in_force(
    db: &dyn Database,
    provider_id: &str,
    month: &Month,
) -> ApiResult<Option<Option<Decimal>>> {
    let rows = db.execute(
        "SELECT rate FROM commission_rates WHERE provider_id = ? AND effective_from <= ?
         ORDER BY effective_from DESC LIMIT 1",
        &[provider_id.into(), month.to_string().into()],
    )?;
    rows.first()
        .map(|r| r.opt_text(0)?.as_deref().map(decimal).transpose())
        .transpose()
}

/// Sets a provider's rate (or with `None` the deployment's) from `effective_from` on.
pub(crate) fn set_rate(
    db: &dyn Database,
    provider_id: &str,
    effective_from: &Month,
    rate: Option<Decimal>,
    operator_id: &str,
    at: &str,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO commission_rates (provider_id, effective_from, rate, set_by, set_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (provider_id, effective_from) DO UPDATE SET rate = ?3, set_by = ?4, set_at = ?5",
        &[
            provider_id.into(),
            effective_from.to_string().into(),
            rate.map(|r| r.to_string()).into(),
            operator_id.into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// The latest month a statement of the provider was written for.
pub(crate) fn last_closed_month(db: &dyn Database, provider_id: &str) -> ApiResult<Option<String>> {
    let rows = db.execute(
        "SELECT MAX(month) FROM settlements WHERE provider_id = ?",
        &[provider_id.into()],
    )?;
    Ok(rows.first().map(|r| r.opt_text(0)).transpose()?.flatten())
}

/// The months first closed already, with the instants they were frozen with (`None` for a
/// month closed before months recorded them) and how many providers their last close left
/// open; within [`from`, `to`], by month.
pub(crate) fn frozen_months(
    db: &dyn Database,
    from: &Month,
    to: &Month,
) -> ApiResult<Vec<(String, Option<Span>, i64)>> {
    let rows = db.execute(
        "SELECT month, period_start, period_end, open_providers FROM settlement_months
         WHERE month >= ? AND month <= ? ORDER BY month",
        &[from.to_string().into(), to.to_string().into()],
    )?;
    rows.iter()
        .map(|r| {
            let span = match (r.opt_int(1)?, r.opt_int(2)?) {
                (Some(start), Some(end)) => Some(Span { start, end }),
                _ => None,
            };
            Ok((r.text(0)?, span, r.int(3)?))
        })
        .collect()
}

/// Freezes `month` at `span` the first time it is closed (a month closed before its instants
/// were recorded takes them now); later closes keep what was frozen. Returns the frozen span.
pub(crate) fn freeze_month(
    db: &dyn Database,
    month: &Month,
    span: Span,
    by: &str,
    at: &str,
) -> ApiResult<Span> {
    db.execute(
        "INSERT INTO settlement_months (month, closed_by, closed_at, period_start, period_end)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (month) DO UPDATE
           SET period_start = COALESCE(settlement_months.period_start, ?4),
               period_end = COALESCE(settlement_months.period_end, ?5)",
        &[
            month.to_string().into(),
            by.into(),
            at.into(),
            span.start.into(),
            span.end.into(),
        ],
    )?;
    let rows = db.execute(
        "SELECT period_start, period_end FROM settlement_months WHERE month = ?",
        &[month.to_string().into()],
    )?;
    let row = rows
        .first()
        .ok_or_else(|| ApiError::internal("a frozen month without its row"))?;
    Ok(Span {
        start: row.int(0)?,
        end: row.int(1)?,
    })
}

/// Records how many providers the month's last close left open.
pub(crate) fn set_open_providers(db: &dyn Database, month: &Month, open: i64) -> ApiResult<()> {
    db.execute(
        "UPDATE settlement_months SET open_providers = ? WHERE month = ?",
        &[open.into(), month.to_string().into()],
    )?;
    Ok(())
}

/// The earliest instant anything still settles from: the first non-test bill, write-off or
/// unbilled period.
pub(crate) fn earliest_activity(db: &dyn Database) -> ApiResult<Option<i64>> {
    let rows = db.execute(
        "SELECT MIN(t) FROM (
           SELECT MIN(period_start) AS t FROM bills WHERE test = 0
           UNION ALL SELECT MIN(period_start) FROM write_offs WHERE test = 0
           UNION ALL SELECT MIN(c.next_period_start) FROM billing_cursors c
             JOIN instances i ON i.id = c.instance_id
             WHERE c.next_close_at IS NOT NULL AND i.test = 0
         ) AS firsts",
        &[],
    )?;
    Ok(rows.first().map(|r| r.opt_int(0)).transpose()?.flatten())
}

/// A non-test instance's period starting before a month's end that is neither billed nor
/// written off.
pub(crate) struct Unbilled {
    pub(crate) provider_id: String,
    pub(crate) instance_id: String,
    pub(crate) period_start: i64,
    pub(crate) closes_at: i64,
    /// Why the last close saw it unbilled, if it saw this very period.
    pub(crate) reason: Option<String>,
}

/// The non-test instances (of `scope`'s provider only, when given) whose billing cursor stands
/// before `end`: each holds its provider's months from then on open. By provider, instance.
pub(crate) fn unbilled_before(
    db: &dyn Database,
    end: i64,
    scope: Option<&str>,
) -> ApiResult<Vec<Unbilled>> {
    let rows = db.execute(
        "SELECT i.provider_id, c.instance_id, c.next_period_start, c.next_close_at, b.reason
         FROM billing_cursors c JOIN instances i ON i.id = c.instance_id
         LEFT JOIN settlement_blocks b
           ON b.instance_id = c.instance_id AND b.period_start = c.next_period_start
         WHERE c.next_close_at IS NOT NULL AND c.next_period_start < ?1 AND i.test = 0
           AND (CAST(?2 AS TEXT) IS NULL OR i.provider_id = ?2)
         ORDER BY i.provider_id, c.instance_id",
        &[end.into(), scope.map(str::to_owned).into()],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Unbilled {
                provider_id: r.text(0)?,
                instance_id: r.text(1)?,
                period_start: r.int(2)?,
                closes_at: r.int(3)?,
                reason: r.opt_text(4)?,
            })
        })
        .collect()
}

/// Remembers why an instance's period could not be billed, for the settlement pages.
pub(crate) fn remember_block(
    db: &dyn Database,
    instance_id: &str,
    period_start: i64,
    reason: &str,
    at: &str,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO settlement_blocks (instance_id, period_start, reason, seen_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (instance_id) DO UPDATE SET period_start = ?2, reason = ?3, seen_at = ?4",
        &[
            instance_id.into(),
            period_start.into(),
            reason.into(),
            at.into(),
        ],
    )?;
    Ok(())
}

/// A provider's product's bills of a month: their product fees, how many, and what they
/// still owe of them.
pub(crate) struct Billed {
    pub(crate) provider_id: String,
    pub(crate) product_id: String,
    pub(crate) fees: Cents,
    pub(crate) count: i64,
    pub(crate) owed: Cents,
}

/// One provider's products' fees, bill counts and what they still owe over a range of periods,
/// read by the provider's index alone (`bills_by_provider_for_settlement`).
pub(crate) const PROVIDER_FEES: &str = "SELECT provider_id, product_id,
            CAST(SUM(product_fees_cents) AS BIGINT), COUNT(*),
            CAST(SUM(uncollected_product_cents) AS BIGINT)
     FROM bills
     WHERE provider_id = ? AND period_start >= ? AND period_start < ? AND test = 0
     GROUP BY provider_id, product_id ORDER BY provider_id, product_id";

/// Each provider's products' bills of periods starting in `span` (test orders' aside), ordered
/// by provider then product; `scope` restricts them to one provider.
pub(crate) fn billed(db: &dyn Database, scope: Option<&str>, span: Span) -> ApiResult<Vec<Billed>> {
    // One provider's bills are read by its index; every provider's by the month's.
    let rows = match scope {
        Some(provider_id) => db.execute(
            PROVIDER_FEES,
            &[provider_id.into(), span.start.into(), span.end.into()],
        )?,
        None => db.execute(
            "SELECT provider_id, product_id, CAST(SUM(product_fees_cents) AS BIGINT), COUNT(*),
                    CAST(SUM(uncollected_product_cents) AS BIGINT)
             FROM bills
             WHERE period_start >= ? AND period_start < ? AND test = 0
             GROUP BY provider_id, product_id ORDER BY provider_id, product_id",
            &[span.start.into(), span.end.into()],
        )?,
    };
    rows.iter()
        .map(|r| {
            Ok(Billed {
                provider_id: r.text(0)?,
                product_id: r.text(1)?,
                fees: Cents(r.int(2)?),
                count: r.int(3)?,
                owed: Cents(r.int(4)?),
            })
        })
        .collect()
}

/// What was collected of each provider's products' fees within `span` (less what credit notes
/// gave back), by no statement yet, as (provider, product, amount); `scope` restricts it to one
/// provider.
pub(crate) fn collected(
    db: &dyn Database,
    scope: Option<&str>,
    span: Span,
) -> ApiResult<Vec<(String, String, Cents)>> {
    sums(
        db,
        &Movements::Collections.rows(scope.is_some()),
        scope,
        span,
    )
}

/// The product-fee parts of the credit notes issued within `span`, by no statement yet, as
/// (provider, product, amount); `scope` restricts them to one provider.
pub(crate) fn credited(
    db: &dyn Database,
    scope: Option<&str>,
    span: Span,
) -> ApiResult<Vec<(String, String, Cents)>> {
    sums(
        db,
        &Movements::CreditNotes.rows(scope.is_some()),
        scope,
        span,
    )
}

/// What a statement counts besides its bills: each row dated within its month, counted once.
#[derive(Clone, Copy)]
enum Movements {
    Collections,
    CreditNotes,
}

impl Movements {
    /// `FROM … WHERE` of the rows within `[?2, ?3)` that no statement counts yet: of the
    /// provider `?1` when `scoped` (read by the provider's index), else of every provider (`?1`
    /// NULL, read by the time's).
    fn rows(self, scoped: bool) -> String {
        let (table, at, link, key) = match self {
            Movements::Collections => (
                "collections",
                "collected_at",
                "statement_collections",
                "collection_id",
            ),
            Movements::CreditNotes => (
                "credit_notes",
                "issued_at",
                "statement_credit_notes",
                "credit_note_id",
            ),
        };
        let provider = if scoped {
            "provider_id = ?1"
        } else {
            "CAST(?1 AS TEXT) IS NULL"
        };
        format!(
            "FROM {table} m WHERE {provider} AND {at} >= ?2 AND {at} < ?3
               AND NOT EXISTS (SELECT 1 FROM {link} l WHERE l.{key} = m.id)"
        )
    }
}

/// The product-fee amounts of `rows` (a [`Movements::rows`]) per provider and product.
fn sums(
    db: &dyn Database,
    rows: &str,
    scope: Option<&str>,
    span: Span,
) -> ApiResult<Vec<(String, String, Cents)>> {
    let rows = db.execute(
        &format!(
            "SELECT provider_id, product_id, CAST(SUM(product_cents) AS BIGINT) {rows}
             GROUP BY provider_id, product_id"
        ),
        &[
            scope.map(str::to_owned).into(),
            span.start.into(),
            span.end.into(),
        ],
    )?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?, Cents(r.int(2)?))))
        .collect()
}

/// The non-test write-offs of periods starting in `span`, as (provider, product, period), by
/// provider, product and period; `scope` restricts them to one provider.
pub(crate) fn write_offs(
    db: &dyn Database,
    scope: Option<&str>,
    span: Span,
) -> ApiResult<Vec<(String, String, WrittenOffPeriod)>> {
    let rows = db.execute(
        "SELECT provider_id, product_id, instance_id, period_start, reason FROM write_offs
         WHERE test = 0 AND (CAST(?1 AS TEXT) IS NULL OR provider_id = ?1)
           AND period_start >= ?2 AND period_start < ?3
         ORDER BY provider_id, product_id, period_start, instance_id",
        &[
            scope.map(str::to_owned).into(),
            span.start.into(),
            span.end.into(),
        ],
    )?;
    rows.iter()
        .map(|r| {
            let period = WrittenOffPeriod {
                instance_id: r.text(2)?,
                period_start: clock::from_unix(r.int(3)?)?,
                reason: r.text(4)?,
            };
            Ok((r.text(0)?, r.text(1)?, period))
        })
        .collect()
}

/// Writes one provider's statement of a month, and links it to what it counts: its provider's
/// non-test bills of periods starting in its span, and the collections and credit notes within
/// it that no statement counts yet. A bill (a collection, a credit note) already in a statement
/// fails the whole close: each link table is keyed by what it links.
pub(crate) fn insert_statement(
    db: &dyn Database,
    id: &str,
    statement: &Statement,
    span: Span,
    closed_at: &str,
) -> ApiResult<()> {
    let products = serde_json::to_string(&statement.products).map_err(ApiError::internal)?;
    db.execute(
        "INSERT INTO settlements (id, provider_id, month, rate, products, gross_cents,
                                  collected_cents, credited_cents, uncollected_cents,
                                  commission_cents, net_cents, bill_count, closed_at,
                                  period_start, period_end, write_off_count)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            statement.provider_id.clone().into(),
            statement.month.to_string().into(),
            statement.rate.to_string().into(),
            products.into(),
            statement.gross.0.into(),
            statement.collected.0.into(),
            statement.credited.0.into(),
            statement.uncollected.0.into(),
            statement.commission.0.into(),
            statement.net.0.into(),
            statement.bill_count.into(),
            closed_at.into(),
            span.start.into(),
            span.end.into(),
            statement.write_off_count.into(),
        ],
    )?;
    let provider = statement.provider_id.clone();
    let params = [
        provider.into(),
        span.start.into(),
        span.end.into(),
        id.into(),
    ];
    db.execute(
        "INSERT INTO statement_bills (bill_id, statement_id)
         SELECT id, ?4 FROM bills
         WHERE provider_id = ?1 AND test = 0 AND period_start >= ?2 AND period_start < ?3",
        &params,
    )?;
    let collections = Movements::Collections.rows(true);
    db.execute(
        &format!(
            "INSERT INTO statement_collections (collection_id, statement_id) SELECT id, ?4 {collections}"
        ),
        &params,
    )?;
    let notes = Movements::CreditNotes.rows(true);
    db.execute(
        &format!(
            "INSERT INTO statement_credit_notes (credit_note_id, statement_id) SELECT id, ?4 {notes}"
        ),
        &params,
    )?;
    Ok(())
}

const COLUMNS: &str = "id, provider_id, month, rate, products, gross_cents, commission_cents, \
                       net_cents, bill_count, closed_at, paid_at, payout_reference, \
                       period_start, period_end, write_off_count, collected_cents, \
                       credited_cents, uncollected_cents";

fn from_row(row: &Row) -> ApiResult<Statement> {
    let period = match (row.opt_int(12)?, row.opt_int(13)?) {
        (Some(start), Some(end)) => Some(Span { start, end }.into()),
        _ => None,
    };
    Ok(Statement {
        id: Some(row.text(0)?),
        provider_id: row.text(1)?,
        month: month(&row.text(2)?)?,
        period,
        status: MonthStatus::Closed,
        currency: ACCOUNT_CURRENCY,
        rate: decimal(&row.text(3)?)?,
        products: serde_json::from_str::<Vec<ProductSettlement>>(&row.text(4)?)
            .map_err(ApiError::internal)?,
        gross: Cents(row.int(5)?),
        collected: Cents(row.int(15)?),
        credited: Cents(row.int(16)?),
        uncollected: Cents(row.int(17)?),
        commission: Cents(row.int(6)?),
        net: Cents(row.int(7)?),
        bill_count: row.int(8)?,
        write_off_count: row.int(14)?,
        closed_at: Some(clock::stored(&row.text(9)?)?),
        paid_at: row
            .opt_text(10)?
            .as_deref()
            .map(clock::stored)
            .transpose()?,
        payout_reference: row.opt_text(11)?,
    })
}

/// A month's written statements, by provider; `scope` restricts them to one provider.
pub(crate) fn statements(
    db: &dyn Database,
    month: &Month,
    scope: Option<&str>,
) -> ApiResult<Vec<Statement>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM settlements WHERE month = ?1 AND (CAST(?2 AS TEXT) IS NULL OR provider_id = ?2)
             ORDER BY provider_id"
        ),
        &[month.to_string().into(), scope.map(str::to_owned).into()],
    )?;
    rows.iter().map(from_row).collect()
}

/// A written statement.
pub(crate) fn statement(db: &dyn Database, id: &str) -> ApiResult<Statement> {
    let rows = db.execute(
        &format!("SELECT {COLUMNS} FROM settlements WHERE id = ?"),
        &[id.into()],
    )?;
    rows.first()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("statement"))
}

/// Records a statement paid, unless it already was; whether this call recorded it.
pub(crate) fn mark_paid(
    db: &dyn Database,
    id: &str,
    by: &str,
    reference: &str,
    at: &str,
) -> ApiResult<bool> {
    let rows = db.execute(
        "UPDATE settlements SET paid_at = ?1, paid_by = ?2, payout_reference = ?3
         WHERE id = ?4 AND paid_at IS NULL RETURNING id",
        &[at.into(), by.into(), reference.into(), id.into()],
    )?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider's statement reads its own collections and credit notes by its index, never
    /// another tenant's; a close of every provider reads the month's by their time.
    #[test]
    fn a_providers_collections_are_read_by_its_own_index() {
        let plan = |m: Movements, scoped| {
            let sql = format!("SELECT provider_id, SUM(product_cents) {}", m.rows(scoped));
            crate::platform::storage::query_plan(&sql, 3)
        };
        let own = plan(Movements::Collections, true);
        assert!(own.contains("INDEX collections_by_provider"), "{own}");
        let all = plan(Movements::Collections, false);
        assert!(all.contains("INDEX collections_by_time"), "{all}");
        let notes = plan(Movements::CreditNotes, true);
        assert!(notes.contains("INDEX credit_notes_by_provider"), "{notes}");
    }

    /// A provider's statement reads its own bills by its index, never another tenant's.
    #[test]
    fn a_providers_fees_are_read_by_its_own_index() {
        let plan = crate::platform::storage::query_plan(PROVIDER_FEES, 3);
        assert!(
            plan.contains(
                "USING COVERING INDEX bills_by_provider_for_settlement \
                 (provider_id=? AND period_start>? AND period_start<?)"
            ),
            "{plan}"
        );
    }
}
