//! Usage the platform reports itself (docs/RULES.md R9.13–R9.15): Time from an instance's running
//! intervals, Prometheus from the provider's metrics. Bill usage arrives through `POST
//! /api/v1/metering/platform-bills` and needs no collection.

use rust_decimal::Decimal;

use crate::metering::UsageRecord;
use crate::orders::Terms;
use crate::orders::instance::{Instance, RunningInterval};
use crate::period::Period;
use crate::platform::outbound::{self, Outbound};
use crate::sales::{Endpoint, PlatformSource, PrometheusQuery, ReportingMethod, Selector};

/// Seconds the instance ran within the period: its intervals clipped to `[start, end)`, an open
/// interval running until the end of the period.
pub(crate) fn running_seconds(intervals: &[RunningInterval], period: &Period) -> i64 {
    let (start, end) = (period.start.timestamp(), period.end.timestamp());
    intervals
        .iter()
        .map(|i| {
            let from = i.started_at.max(start);
            let to = i.ended_at.unwrap_or(end).min(end);
            (to - from).max(0)
        })
        .sum()
}

/// The PromQL asked of the provider's Prometheus: the increase of the selector, restricted to the
/// instance, over the whole period. `increase` handles counter resets.
pub(crate) fn promql(selector: &Selector, instance_id: &str, period: &Period) -> String {
    let seconds = (period.end - period.start).num_seconds();
    format!(
        "sum(increase({}[{seconds}s]))",
        selector.for_instance(instance_id)
    )
}

/// The instant query of the period's increase, at the period's end. Both parameters are
/// encoded: nothing the provider wrote reaches the URL as it was written.
pub(crate) fn query_url(
    endpoint: &Endpoint,
    selector: &Selector,
    instance_id: &str,
    period: &Period,
) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &promql(selector, instance_id, period))
        .append_pair("time", &period.end.timestamp().to_string())
        .finish();
    format!("{}?{query}", endpoint.query_api())
}

/// The scalar of an instant-vector answer; no series means no usage.
pub(crate) fn parse_answer(body: &[u8]) -> Result<Decimal, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not Prometheus JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "Prometheus answered {}: {}",
            v["errorType"], v["error"]
        ));
    }
    let result = v["data"]["result"]
        .as_array()
        .ok_or("no data.result in the answer")?;
    match result.first() {
        None => Ok(Decimal::ZERO),
        Some(series) => {
            let value = series["value"][1]
                .as_str()
                .ok_or("a sample without a value")?;
            let d: Decimal = value
                .parse()
                .map_err(|_| format!("not a number: {value}"))?;
            if d.is_sign_negative() {
                return Err(format!("a negative increase: {value}"));
            }
            Ok(d)
        }
    }
}

/// Decimal places kept of a Prometheus increase (it extrapolates, so it is rarely whole).
pub(crate) const PROMETHEUS_SCALE: u32 = 6;

/// Queries the increase for one instance and period, truncated to [`PROMETHEUS_SCALE`] places.
pub(crate) fn prometheus_increase(
    out: &dyn Outbound,
    q: &PrometheusQuery,
    instance_id: &str,
    period: &Period,
) -> Result<Decimal, String> {
    // A query is only ever built from the parsed parts.
    let (endpoint, selector) = (&q.endpoint, &q.selector);
    let url = query_url(endpoint, selector, instance_id, period);
    let (status, body) = outbound::get(out, &url)
        .map_err(|e| format!("Prometheus at {} unreachable: {e}", endpoint.as_str()))?;
    if status != 200 {
        return Err(format!(
            "Prometheus at {} answered HTTP {status}",
            endpoint.as_str()
        ));
    }
    Ok(parse_answer(&body)?.trunc_with_scale(PROMETHEUS_SCALE))
}

/// Usage the platform measured for one (instance, period), gathered before the write
/// transaction (a Prometheus query must not run while holding the database's write lock).
pub(crate) fn collect(
    instance: &Instance,
    terms: &Terms,
    period: &Period,
    out: &dyn Outbound,
) -> Result<Vec<UsageRecord>, String> {
    let mut records = Vec::new();
    for s in &terms.items {
        let Some(ReportingMethod::ComputeNest(source)) = &s.reporting else {
            continue;
        };
        let (value, scale) = match source {
            PlatformSource::Time => (running_seconds(&instance.running_intervals, period), 0),
            PlatformSource::Prometheus(q) => {
                let d = prometheus_increase(out, q, &instance.id, period)?;
                let mantissa = d
                    .checked_mul(Decimal::from(10i64.pow(PROMETHEUS_SCALE)))
                    .and_then(|m| i64::try_from(m.trunc()).ok())
                    .filter(|m| *m <= crate::metering::MAX_VALUE)
                    .ok_or_else(|| format!("an increase of {d} is out of range"))?;
                (mantissa, PROMETHEUS_SCALE)
            }
            // Reported through POST /api/v1/metering/platform-bills.
            PlatformSource::Bill => continue,
        };
        records.push(UsageRecord {
            origin: "platform".to_owned(),
            item_code: s.item.code().as_str().to_owned(),
            start_time: period.start.timestamp(),
            end_time: period.end.timestamp(),
            value,
            scale,
            period_start: period.start.timestamp(),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn hour(start: i64) -> Period {
        Period {
            start: DateTime::from_timestamp(start, 0).unwrap(),
            end: DateTime::from_timestamp(start + 3600, 0).unwrap(),
        }
    }

    #[test]
    fn running_time_is_clipped_to_the_period() {
        let p = hour(7200);
        let iv = |s, e| RunningInterval {
            started_at: s,
            ended_at: e,
        };
        assert_eq!(running_seconds(&[iv(0, None)], &p), 3600);
        assert_eq!(running_seconds(&[iv(0, Some(9000))], &p), 1800);
        assert_eq!(
            running_seconds(
                &[iv(7200, Some(7500)), iv(8000, Some(8100)), iv(10000, None)],
                &p
            ),
            400 + 800
        );
        assert_eq!(running_seconds(&[iv(0, Some(7200))], &p), 0);
        assert_eq!(running_seconds(&[iv(10800, None)], &p), 0);
    }

    #[test]
    fn the_instance_label_is_added_to_any_selector() {
        let p = hour(0);
        let promql = |selector: &str| promql(&Selector::parse(selector).unwrap(), "si-1", &p);
        assert_eq!(
            promql("reqs_total"),
            r#"sum(increase(reqs_total{service_instance_id="si-1"}[3600s]))"#
        );
        assert_eq!(
            promql("reqs_total{}"),
            r#"sum(increase(reqs_total{service_instance_id="si-1"}[3600s]))"#
        );
        assert_eq!(
            promql(r#"reqs_total{job="api"}"#),
            r#"sum(increase(reqs_total{job="api",service_instance_id="si-1"}[3600s]))"#
        );
    }

    #[test]
    fn the_query_url_is_the_endpoints_query_api_with_encoded_parameters_only() {
        let endpoint = Endpoint::parse("http://prom:9090/tenant-a/").unwrap();
        let selector = Selector::parse(r#"reqs_total{path="/a&b=c"}"#).unwrap();
        let url = query_url(&endpoint, &selector, "si-1", &hour(0));
        let (api, query) = url.split_once('?').unwrap();
        assert_eq!(api, "http://prom:9090/tenant-a/api/v1/query");
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            params,
            [
                (
                    "query".to_owned(),
                    r#"sum(increase(reqs_total{path="/a&b=c",service_instance_id="si-1"}[3600s]))"#
                        .to_owned()
                ),
                ("time".to_owned(), "3600".to_owned()),
            ]
        );
    }

    #[test]
    fn answers_are_parsed_exactly() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}"#;
        assert_eq!(parse_answer(ok).unwrap(), Decimal::new(125, 1));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_answer(empty).unwrap(), Decimal::ZERO);
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(parse_answer(err).is_err());
        assert!(parse_answer(b"<html>").is_err());
    }
}
