//! Commission rates, closed months and written statements in the database. `settlement_months`
//! has one row per closed month and `settlements` is UNIQUE on (provider, month): a month's
//! statements are written once however many closes race.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::{ApiError, ApiResult};
use crate::orders::ledger::{ACCOUNT_CURRENCY, Cents};
use crate::platform::storage::{Database, Row};
use crate::settlement::{Month, MonthStatus, ProductFees, ProductSettlement, Statement};

/// The rate an operator set for this provider, if any.
pub(crate) fn provider_rate(db: &dyn Database, provider_id: &str) -> ApiResult<Option<Decimal>> {
    let rows = db.execute(
        "SELECT rate FROM provider_commissions WHERE provider_id = ?",
        &[provider_id.into()],
    )?;
    rows.first().map(|r| decimal(&r.text(0)?)).transpose()
}

fn decimal(text: &str) -> ApiResult<Decimal> {
    Decimal::from_str(text).map_err(ApiError::internal)
}

/// Sets (or with `None` removes) a provider's own rate.
pub(crate) fn set_provider_rate(
    db: &dyn Database,
    provider_id: &str,
    rate: Option<Decimal>,
    operator_id: &str,
    at: &str,
) -> ApiResult<()> {
    match rate {
        Some(rate) => db.execute(
            "INSERT INTO provider_commissions (provider_id, rate, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (provider_id) DO UPDATE SET rate = ?2, set_by = ?3, set_at = ?4",
            &[
                provider_id.into(),
                rate.to_string().into(),
                operator_id.into(),
                at.into(),
            ],
        )?,
        None => db.execute(
            "DELETE FROM provider_commissions WHERE provider_id = ?",
            &[provider_id.into()],
        )?,
    };
    Ok(())
}

/// When `month` was closed, if it was.
pub(crate) fn month_closed_at(db: &dyn Database, month: &Month) -> ApiResult<Option<String>> {
    let rows = db.execute(
        "SELECT closed_at FROM settlement_months WHERE month = ?",
        &[month.to_string().into()],
    )?;
    Ok(rows.first().map(|r| r.text(0)).transpose()?)
}

/// Records `month` closed. Inside the closing transaction; the primary key makes a second
/// close fail rather than write twice.
pub(crate) fn close_month(db: &dyn Database, month: &Month, by: &str, at: &str) -> ApiResult<()> {
    db.execute(
        "INSERT INTO settlement_months (month, closed_by, closed_at) VALUES (?, ?, ?)",
        &[month.to_string().into(), by.into(), at.into()],
    )?;
    Ok(())
}

/// One provider's products' fees and bill counts over a range of periods, read by the provider's
/// index alone (`bills_by_provider_for_settlement`).
pub(crate) const PROVIDER_FEES: &str =
    "SELECT provider_id, product_id, SUM(product_fees_cents), COUNT(*) FROM bills
     WHERE provider_id = ? AND period_start >= ? AND period_start < ? AND test = 0
     GROUP BY provider_id, product_id ORDER BY provider_id, product_id";

/// Each provider's products' fees and bill counts over the bills of periods starting in
/// [`from`, `to`), test orders' aside, ordered by provider then product; `scope` restricts it to
/// one provider.
pub(crate) fn product_fees(
    db: &dyn Database,
    scope: Option<&str>,
    from: i64,
    to: i64,
) -> ApiResult<Vec<(String, ProductFees)>> {
    // One provider's bills are read by its index; every provider's by the month's.
    let rows = match scope {
        Some(provider_id) => {
            db.execute(PROVIDER_FEES, &[provider_id.into(), from.into(), to.into()])?
        }
        None => db.execute(
            "SELECT provider_id, product_id, SUM(product_fees_cents), COUNT(*) FROM bills
             WHERE period_start >= ? AND period_start < ? AND test = 0
             GROUP BY provider_id, product_id ORDER BY provider_id, product_id",
            &[from.into(), to.into()],
        )?,
    };
    rows.iter()
        .map(|r| {
            let fees = ProductFees {
                product_id: r.text(1)?,
                gross: Cents(r.int(2)?),
                bill_count: r.int(3)?,
            };
            Ok((r.text(0)?, fees))
        })
        .collect()
}

/// How many instances still have a period starting before `end` to bill.
pub(crate) fn instances_unbilled_before(db: &dyn Database, end: i64) -> ApiResult<i64> {
    let rows = db.execute(
        "SELECT COUNT(*) FROM billing_cursors
         WHERE next_close_at IS NOT NULL AND next_period_start < ?",
        &[end.into()],
    )?;
    Ok(rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0))
}

/// Writes one closed month's statement.
pub(crate) fn insert_statement(
    db: &dyn Database,
    id: &str,
    statement: &Statement,
    closed_at: &str,
) -> ApiResult<()> {
    let products = serde_json::to_string(&statement.products).map_err(ApiError::internal)?;
    db.execute(
        "INSERT INTO settlements (id, provider_id, month, rate, products, gross_cents,
                                  commission_cents, net_cents, bill_count, closed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            id.into(),
            statement.provider_id.clone().into(),
            statement.month.clone().into(),
            statement.rate.to_string().into(),
            products.into(),
            statement.gross.0.into(),
            statement.commission.0.into(),
            statement.net.0.into(),
            statement.bill_count.into(),
            closed_at.into(),
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, provider_id, month, rate, products, gross_cents, commission_cents, \
                       net_cents, bill_count, closed_at, paid_at, payout_reference";

fn from_row(row: &Row) -> ApiResult<Statement> {
    Ok(Statement {
        id: Some(row.text(0)?),
        provider_id: row.text(1)?,
        month: row.text(2)?,
        status: MonthStatus::Closed,
        currency: ACCOUNT_CURRENCY,
        rate: decimal(&row.text(3)?)?,
        products: serde_json::from_str::<Vec<ProductSettlement>>(&row.text(4)?)
            .map_err(ApiError::internal)?,
        gross: Cents(row.int(5)?),
        commission: Cents(row.int(6)?),
        net: Cents(row.int(7)?),
        bill_count: row.int(8)?,
        closed_at: Some(row.text(9)?),
        paid_at: row.opt_text(10)?,
        payout_reference: row.opt_text(11)?,
    })
}

/// A closed month's statements, by provider; `scope` restricts them to one provider.
pub(crate) fn statements(
    db: &dyn Database,
    month: &Month,
    scope: Option<&str>,
) -> ApiResult<Vec<Statement>> {
    let rows = db.execute(
        &format!(
            "SELECT {COLUMNS} FROM settlements WHERE month = ?1 AND (?2 IS NULL OR provider_id = ?2)
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
