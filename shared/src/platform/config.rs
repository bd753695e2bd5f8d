//! The deployment's configuration: the Spin variables every component reads.

use chrono_tz::Tz;
use rust_decimal::Decimal;

/// Deployment configuration, from Spin variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// The built-in operator's bearer token (at least 16 characters).
    pub admin_token: String,
    /// The zone day periods are cut in.
    pub billing_timezone: Tz,
    /// Whether requests may carry `X-Clock-Now` (test deployments only).
    pub allow_clock_override: bool,
    /// The one origin bill runs may reach for Prometheus-reported items (`allowed_outbound_hosts`
    /// of the components that run bills); `None` where a component is not given the variable.
    pub prometheus_origin: Option<String>,
    /// The marketplace's share of a provider's product fees, in [0, 1): the rate of providers an
    /// operator has not given one of their own.
    pub commission_rate: Decimal,
    /// The most test instances of one product alive at once (not released).
    pub test_instance_limit: u32,
    /// How long a test instance lives: the first bill run after it released it.
    pub test_instance_max_hours: u32,
}

/// A positive whole number of a variable, or `default` when it is not set.
fn positive(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
) -> Result<u32, String> {
    match get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name} must be a positive whole number, got {text:?}")),
    }
}

/// Parses a commission rate: a decimal in [0, 1) with at most 6 decimal places.
pub fn commission_rate(text: &str) -> Option<Decimal> {
    text.trim()
        .parse::<Decimal>()
        .ok()
        .filter(|r| *r >= Decimal::ZERO && *r < Decimal::ONE && r.normalize().scale() <= 6)
        .map(|r| r.normalize())
}

impl Config {
    /// Reads the variables through `get` (Spin's variables, or a map in tests).
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let admin_token = get("admin_token").unwrap_or_default();
        if admin_token.len() < 16 {
            return Err("the admin_token variable must be set to at least 16 characters".into());
        }
        let tz = get("billing_timezone").unwrap_or_else(|| "Asia/Shanghai".into());
        let billing_timezone = tz
            .parse()
            .map_err(|_| format!("billing_timezone {tz:?} is not an IANA time zone"))?;
        let allow_clock_override = match get("allow_clock_override").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "allow_clock_override must be true or false, got {other:?}"
                ));
            }
        };
        let rate = get("commission_rate").unwrap_or_else(|| "0".into());
        let commission_rate = commission_rate(&rate).ok_or_else(|| {
            format!(
                "commission_rate must be a decimal from 0 up to (not including) 1, got {rate:?}"
            )
        })?;
        Ok(Self {
            commission_rate,
            test_instance_limit: positive(&get, "test_instance_limit", 5)?,
            test_instance_max_hours: positive(&get, "test_instance_max_hours", 72)?,
            admin_token,
            billing_timezone,
            allow_clock_override,
            prometheus_origin: get("prometheus_origin").map(|o| o.trim_end_matches('/').to_owned()),
        })
    }
}
