//! Downloads: the CSV exports of the API's lists — bills, an instance's usage, a month's
//! statements — for a signed-in browser, under the same tenancy, written a page at a time.

use http::HeaderValue;
use http::header::CONTENT_DISPOSITION;

use crate::billing::BillFilter;
use crate::console::http::{Req, Resp};
use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::export;
use crate::identity::{Principal, Role};
use crate::settlement;

/// Marks an export as a file to save, named `name`.
fn attachment(mut response: Resp, name: &str) -> ApiResult<Resp> {
    let value = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(ApiError::internal)?;
    response.headers_mut().insert(CONTENT_DISPOSITION, value);
    Ok(response)
}

/// `GET /exports/bills[?instance_id=]`: the bills the visitor sees.
pub(crate) fn bills(req: &Req, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let filter = BillFilter {
        instance_id: req.query("instance_id").map(str::to_owned),
        from: 0,
        to: i64::MAX,
    };
    let csv = export::bills(req.db()?, me.clone(), filter, None)?;
    attachment(csv, "bills.csv")
}

/// `GET /exports/usage?instance_id=`: every usage record of an instance the visitor sees.
pub(crate) fn usage(req: &Req, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Customer, Role::Provider, Role::Operator])?;
    let instance = req.query("instance_id").ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            "instance_id",
            Code::InvalidQuery,
            "is required",
        )])
    })?;
    let csv = export::usage(req.db()?, me.clone(), instance, (0, i64::MAX), None)?;
    attachment(csv, &format!("usage-{instance}.csv"))
}

/// `GET /exports/settlements?month=`: a month's statements, the provider's own or every
/// provider's for operators.
pub(crate) fn settlements(req: &Req, me: &Principal) -> ApiResult<Resp> {
    me.require(&[Role::Provider, Role::Operator])?;
    let tz = req.config.billing_timezone;
    let month = settlement::month_of(req.query("month"), req.now, tz)?;
    let provider = req.query("provider_id").filter(|_| me.is_operator());
    let statements = settlement::statements(
        req.db()?,
        me,
        &month,
        provider,
        tz,
        req.config.commission_rate,
    )?;
    attachment(
        export::statements(&statements.items)?,
        &format!("settlements-{month}.csv"),
    )
}
