//! The deployment's configuration: the Spin variables every component reads.

use chrono_tz::Tz;

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
        Ok(Self {
            admin_token,
            billing_timezone,
            allow_clock_override,
            prometheus_origin: get("prometheus_origin").map(|o| o.trim_end_matches('/').to_owned()),
        })
    }
}
