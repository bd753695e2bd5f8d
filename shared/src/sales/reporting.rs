//! How an item's usage is reported (docs/RULES.md R6.2–R6.5): pushed by the provider, or
//! reported by the platform from running time, bill data or the provider's Prometheus. A
//! Prometheus item carries its endpoint and selector parsed, so one without them cannot be
//! built — nor read back from the database.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, Code, FieldError};
use crate::sales::{Endpoint, Selector};
use crate::validate::Errors;

/// A Prometheus query of an item, built valid: its endpoint and metric selector parsed, each
/// shown back as the provider wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrometheusQuery {
    pub endpoint: Endpoint,
    pub selector: Selector,
}

/// Where the platform takes an item's usage from when it reports it itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlatformSource {
    /// The instance's running time.
    Time,
    /// Bill data the platform reports.
    Bill,
    /// A Prometheus query, evaluated per instance and period.
    Prometheus(PrometheusQuery),
}

impl PlatformSource {
    /// The source's name on the wire (`time`, `bill`, `prometheus`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            PlatformSource::Time => "time",
            PlatformSource::Bill => "bill",
            PlatformSource::Prometheus(_) => "prometheus",
        }
    }
}

/// Exactly one reporting method per item: an item reported by the platform cannot also be
/// pushed by the provider (split it into two items instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub(crate) enum ReportingMethod {
    ServiceProvider,
    ComputeNest(PlatformSource),
}

/// The source its usage records are stored under: a record's source is part of its identity, so
/// the provider's and the platform's records of one window never collide.
pub(crate) const SERVICE_PROVIDER_SOURCE: &str = "service_provider";
/// The source of bill data the platform reports.
pub(crate) const PLATFORM_BILL_SOURCE: &str = "bill";
/// The source of usage the platform measures at bill time (running time, Prometheus).
pub(crate) const PLATFORM_MEASURED_SOURCE: &str = "platform";

impl ReportingMethod {
    /// The source its usage records are stored under.
    pub(crate) fn record_source(&self) -> &'static str {
        match self {
            ReportingMethod::ServiceProvider => SERVICE_PROVIDER_SOURCE,
            ReportingMethod::ComputeNest(PlatformSource::Bill) => PLATFORM_BILL_SOURCE,
            ReportingMethod::ComputeNest(_) => PLATFORM_MEASURED_SOURCE,
        }
    }
}

/// A reporting method as the API shows it and the database keeps it:
/// `{"method": "compute_nest", "source": "prometheus", "prometheus": {"endpoint", "query"}}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum Wire {
    ServiceProvider,
    ComputeNest {
        source: WireSource,
        #[serde(skip_serializing_if = "Option::is_none")]
        prometheus: Option<PrometheusRequest>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireSource {
    Time,
    Bill,
    Prometheus,
}

/// The `prometheus` object of a reporting method, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrometheusRequest {
    pub endpoint: String,
    pub query: String,
}

impl From<ReportingMethod> for Wire {
    fn from(method: ReportingMethod) -> Self {
        let (source, prometheus) = match method {
            ReportingMethod::ServiceProvider => return Wire::ServiceProvider,
            ReportingMethod::ComputeNest(PlatformSource::Time) => (WireSource::Time, None),
            ReportingMethod::ComputeNest(PlatformSource::Bill) => (WireSource::Bill, None),
            ReportingMethod::ComputeNest(PlatformSource::Prometheus(q)) => (
                WireSource::Prometheus,
                Some(PrometheusRequest {
                    endpoint: q.endpoint.as_str().to_owned(),
                    query: q.selector.as_str().to_owned(),
                }),
            ),
        };
        Wire::ComputeNest { source, prometheus }
    }
}

/// A stored method is read back under today's rules: a Prometheus item without a valid query is
/// no item, and reading it fails loudly instead of at its first bill.
impl TryFrom<Wire> for ReportingMethod {
    type Error = String;

    fn try_from(wire: Wire) -> Result<Self, String> {
        let source = match wire {
            Wire::ServiceProvider => return Ok(ReportingMethod::ServiceProvider),
            Wire::ComputeNest {
                source: WireSource::Time,
                prometheus: None,
            } => PlatformSource::Time,
            Wire::ComputeNest {
                source: WireSource::Bill,
                prometheus: None,
            } => PlatformSource::Bill,
            Wire::ComputeNest {
                source: WireSource::Prometheus,
                prometheus: Some(q),
            } => PlatformSource::Prometheus(PrometheusQuery {
                endpoint: Endpoint::parse(&q.endpoint)?,
                selector: Selector::parse(&q.query)?,
            }),
            Wire::ComputeNest { .. } => {
                return Err("a query goes with the prometheus source, and only with it".into());
            }
        };
        Ok(ReportingMethod::ComputeNest(source))
    }
}

/// The body of `PUT .../billable-items/{code}/reporting`, loose so every mistake is reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportingRequest {
    method: Option<String>,
    source: Option<String>,
    prometheus: Option<PrometheusRequest>,
}

impl ReportingRequest {
    /// Validates the method for the item `code`: the Time source reports running time, so it
    /// applies to the `Period` key (seconds, priced per hour) only.
    pub(crate) fn validate(self, code: &str) -> ApiResult<ReportingMethod> {
        let mut e = Errors::new();
        let method = match self.method.as_deref() {
            None => {
                e.add(
                    "method",
                    Code::Required,
                    "`service_provider` or `compute_nest`",
                );
                None
            }
            Some("service_provider") => {
                self.refuse_platform_fields(&mut e);
                Some(ReportingMethod::ServiceProvider)
            }
            Some("compute_nest") => self.platform_source(&mut e, code),
            Some(other) => {
                e.add(
                    "method",
                    Code::InvalidReportingMethod,
                    format!("`{other}` is not `service_provider` or `compute_nest`"),
                );
                None
            }
        };
        e.finish()?;
        method.ok_or_else(|| ApiError::internal("reporting method missing after validation"))
    }

    /// A provider's method has neither a source nor a query.
    fn refuse_platform_fields(&self, e: &mut Errors) {
        let bad = Code::InvalidReportingMethod;
        if self.source.is_some() {
            e.add("source", bad, "only `compute_nest` reporting has a source");
        }
        if self.prometheus.is_some() {
            e.add(
                "prometheus",
                bad,
                "only the `prometheus` source has a query",
            );
        }
    }

    /// The platform's source of the item `code`, with its query when it is Prometheus.
    fn platform_source(&self, e: &mut Errors, code: &str) -> Option<ReportingMethod> {
        let bad = Code::InvalidReportingMethod;
        let sources = "one of `time`, `bill`, `prometheus`";
        let source = match self.source.as_deref() {
            Some("time") if code != "Period" => {
                e.add(
                    "source",
                    bad,
                    "the `time` source reports running time: use it for the `Period` item",
                );
                None
            }
            Some("time") => Some(PlatformSource::Time),
            Some("bill") => Some(PlatformSource::Bill),
            Some("prometheus") => match &self.prometheus {
                None => {
                    e.add(
                        "prometheus",
                        Code::Required,
                        "`{endpoint, query}` of the Prometheus HTTP API",
                    );
                    None
                }
                Some(q) => prometheus_query(e, q).map(PlatformSource::Prometheus),
            },
            Some(_) => {
                e.add("source", bad, sources);
                None
            }
            None => {
                e.add("source", Code::Required, sources);
                None
            }
        };
        if self.prometheus.is_some() && self.source.as_deref() != Some("prometheus") {
            e.add(
                "prometheus",
                bad,
                "only the `prometheus` source has a query",
            );
        }
        source.map(ReportingMethod::ComputeNest)
    }
}

/// The query, its endpoint and selector each parsed (every refusal reported).
fn prometheus_query(e: &mut Errors, q: &PrometheusRequest) -> Option<PrometheusQuery> {
    let bad = Code::InvalidReportingMethod;
    let endpoint = Endpoint::parse(&q.endpoint)
        .map_err(|why| e.add("prometheus.endpoint", bad, why))
        .ok();
    let selector = Selector::parse(&q.query)
        .map_err(|why| e.add("prometheus.query", bad, why))
        .ok();
    Some(PrometheusQuery {
        endpoint: endpoint?,
        selector: selector?,
    })
}

/// A Prometheus endpoint outside the deployment's `prometheus_origin` could never be queried
/// (Spin denies the request), so every bill of the item would fail: refuse it up front.
pub(crate) fn check_reachable(method: &ReportingMethod, origin: Option<&str>) -> ApiResult<()> {
    let (Some(origin), ReportingMethod::ComputeNest(PlatformSource::Prometheus(q))) =
        (origin, method)
    else {
        return Ok(());
    };
    let endpoint = q.endpoint.base();
    if endpoint == origin || endpoint.starts_with(&format!("{origin}/")) {
        return Ok(());
    }
    Err(ApiError::validation(vec![FieldError::new(
        "prometheus.endpoint",
        Code::InvalidReportingMethod,
        format!("this deployment reaches Prometheus at {origin} only (its prometheus_origin)"),
    )]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reporting(v: serde_json::Value) -> ApiResult<ReportingMethod> {
        serde_json::from_value::<ReportingRequest>(v)
            .unwrap()
            .validate("Period")
    }

    #[test]
    fn the_reporting_methods() {
        assert_eq!(
            reporting(json!({"method": "service_provider"})).unwrap(),
            ReportingMethod::ServiceProvider
        );
        let time = json!({"method": "compute_nest", "source": "time"});
        let for_frequency = serde_json::from_value::<ReportingRequest>(time).unwrap();
        assert!(for_frequency.validate("Frequency").is_err());
        for source in ["time", "bill"] {
            assert!(reporting(json!({"method": "compute_nest", "source": source})).is_ok());
        }
        let p = reporting(json!({"method": "compute_nest", "source": "prometheus",
            "prometheus": {"endpoint": "http://prom:9090/", "query": "requests_total"}}))
        .unwrap();
        let ReportingMethod::ComputeNest(PlatformSource::Prometheus(q)) = &p else {
            panic!("{p:?}");
        };
        assert_eq!(q.endpoint.query_api(), "http://prom:9090/api/v1/query");
    }

    #[test]
    fn inconsistent_reporting_methods_are_refused() {
        for body in [
            json!({}),
            json!({"method": "both"}),
            json!({"method": "service_provider", "source": "time"}),
            json!({"method": "compute_nest"}),
            json!({"method": "compute_nest", "source": "sundial"}),
            json!({"method": "compute_nest", "source": "prometheus"}),
            json!({"method": "compute_nest", "source": "time",
                "prometheus": {"endpoint": "http://p", "query": "q"}}),
            json!({"method": "compute_nest", "source": "prometheus",
                "prometheus": {"endpoint": "ftp://p", "query": "q"}}),
            json!({"method": "compute_nest", "source": "prometheus",
                "prometheus": {"endpoint": "http://p", "query": ""}}),
        ] {
            assert!(reporting(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn a_method_is_stored_and_shown_as_written_and_a_prometheus_item_needs_its_query() {
        for shown in [
            json!({"method": "service_provider"}),
            json!({"method": "compute_nest", "source": "time"}),
            json!({"method": "compute_nest", "source": "bill"}),
            json!({"method": "compute_nest", "source": "prometheus",
                "prometheus": {"endpoint": "http://prom:9090/", "query": " x{a=\"1\"} "}}),
        ] {
            let read: ReportingMethod = serde_json::from_value(shown.clone()).unwrap();
            assert_eq!(serde_json::to_value(&read).unwrap(), shown);
        }
        for unbuildable in [
            json!({"method": "compute_nest", "source": "prometheus"}),
            json!({"method": "compute_nest", "source": "prometheus",
                "prometheus": {"endpoint": "http://p/?x=1", "query": "q"}}),
            json!({"method": "compute_nest", "source": "bill",
                "prometheus": {"endpoint": "http://p", "query": "q"}}),
        ] {
            assert!(serde_json::from_value::<ReportingMethod>(unbuildable).is_err());
        }
    }
}
