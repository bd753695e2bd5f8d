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
    /// The origin browsers and clients reach the deployment at (`https://market.example`),
    /// whatever TLS-terminating proxy stands in front of Spin; `None` when not set. When it is
    /// https, the console's cookies are `Secure` and `__Host-` prefixed and every response
    /// carries `Strict-Transport-Security`.
    pub public_url: Option<String>,
    /// The most test instances of one product alive at once (not released).
    pub test_instance_limit: u32,
    /// How long a test instance lives: the first bill run after it released it.
    pub test_instance_max_hours: u32,
    /// The `allowed_outbound_hosts` entry granting webhooks' endpoints (`https://*`): a webhook's
    /// URL must lie inside it. `None` where a component is not given the variable.
    pub webhook_hosts: Option<String>,
    /// How many days after a price increase it reaches existing instances.
    pub price_increase_notice_days: u32,
    /// How long a customer may stay in arrears before the next bill run suspends its running
    /// instances (0: the first bill run after the arrears began).
    pub arrears_grace_hours: u32,
    /// How many failed authentications one client address may have in a minute before every
    /// authentication from it must wait (R2.10): higher behind a NAT or a proxy many clients share.
    pub failed_authentication_limit: u32,
    /// Where the system of record lives (the Spin components' database; the native tests choose
    /// theirs themselves).
    pub database: DatabaseConfig,
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

/// A whole number of a variable, 0 included, or `default` when it is not set.
fn whole(get: &impl Fn(&str) -> Option<String>, name: &str, default: u32) -> Result<u32, String> {
    match get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("{name} must be a whole number, got {text:?}")),
    }
}

/// The database the components use: the `database` variable and, for PostgreSQL, its
/// `postgres_*` variables.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// Spin's SQLite database `default` (the embedded default: no server to run).
    Sqlite,
    /// A PostgreSQL server, shared by any number of hosts.
    Postgres {
        /// `host:port` (the components' `allowed_outbound_hosts` grant `postgres://` of it).
        host: String,
        /// The database's name.
        database: String,
        /// The role the app connects as.
        user: String,
        /// Its password (a secret variable); empty for none.
        password: String,
    },
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseConfig::Sqlite => f.write_str("Sqlite"),
            // The password never reaches a log.
            DatabaseConfig::Postgres {
                host,
                database,
                user,
                ..
            } => write!(f, "Postgres({user}@{host}/{database})"),
        }
    }
}

impl DatabaseConfig {
    /// The PostgreSQL connection URL Spin opens (`postgres://user:password@host:port/database`,
    /// each part percent-encoded); `None` for SQLite.
    pub fn postgres_url(&self) -> Option<String> {
        let DatabaseConfig::Postgres {
            host,
            database,
            user,
            password,
        } = self
        else {
            return None;
        };
        let credentials = match password.as_str() {
            "" => encode(user),
            password => format!("{}:{}", encode(user), encode(password)),
        };
        Some(format!(
            "postgres://{credentials}@{host}/{}",
            encode(database)
        ))
    }

    fn from_variables(get: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        match get("database").as_deref() {
            None | Some("sqlite") => Ok(DatabaseConfig::Sqlite),
            Some("postgres") => {
                let host = get("postgres_host").unwrap_or_else(|| "127.0.0.1:5432".into());
                let valid_host = host
                    .rsplit_once(':')
                    .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok());
                if !valid_host {
                    return Err(format!("postgres_host must be host:port, got {host:?}"));
                }
                let database = get("postgres_database").unwrap_or_else(|| "nestmarket".into());
                let user = get("postgres_user").unwrap_or_else(|| "nestmarket".into());
                if database.is_empty() || user.is_empty() {
                    return Err("postgres_database and postgres_user must not be empty".into());
                }
                Ok(DatabaseConfig::Postgres {
                    host,
                    database,
                    user,
                    password: get("postgres_password").unwrap_or_default(),
                })
            }
            Some(other) => Err(format!(
                "database must be sqlite or postgres, got {other:?}"
            )),
        }
    }
}

/// Percent-encodes a part of a URL's authority or path: every byte but letters, digits and
/// `-._~`.
fn encode(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Parses a commission rate: a decimal in [0, 1) with at most 6 decimal places.
pub fn commission_rate(text: &str) -> Option<Decimal> {
    text.trim()
        .parse::<Decimal>()
        .ok()
        .filter(|r| *r >= Decimal::ZERO && *r < Decimal::ONE && r.normalize().scale() <= 6)
        .map(|r| r.normalize())
}

/// What `Strict-Transport-Security` says to a browser of an https deployment: https only, for a
/// year.
pub const HSTS: &str = "max-age=31536000";

/// A commission rate as an operator writes one through the API: exactly `0`, or `0.` and one
/// to six digits (the contract's pattern), so what the contract accepts is what is accepted.
pub fn commission_rate_exact(text: &str) -> Option<Decimal> {
    let digits = match text.strip_prefix("0") {
        Some("") => "",
        Some(rest) => rest
            .strip_prefix('.')
            .filter(|d| (1..=6).contains(&d.len()))?,
        None => return None,
    };
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| commission_rate(text))
        .flatten()
}

impl Config {
    /// Whether the deployment is reached over https (its `public_url`).
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// Adds the headers of an https deployment to a response: `Strict-Transport-Security`.
    pub fn secure<B>(&self, response: &mut http::Response<B>) {
        if self.is_https() {
            response.headers_mut().insert(
                http::header::STRICT_TRANSPORT_SECURITY,
                http::HeaderValue::from_static(HSTS),
            );
        }
    }

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
        let public_url = match get("public_url").map(|u| u.trim().trim_end_matches('/').to_owned())
        {
            None => None,
            Some(u) if u.is_empty() => None,
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => Some(u),
            Some(u) => {
                return Err(format!(
                    "public_url must be an http:// or https:// origin, got {u:?}"
                ));
            }
        };
        Ok(Self {
            database: DatabaseConfig::from_variables(&get)?,
            public_url,
            commission_rate,
            test_instance_limit: positive(&get, "test_instance_limit", 5)?,
            test_instance_max_hours: positive(&get, "test_instance_max_hours", 72)?,
            webhook_hosts: get("webhook_hosts")
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty()),
            price_increase_notice_days: positive(&get, "price_increase_notice_days", 90)?,
            arrears_grace_hours: whole(&get, "arrears_grace_hours", 24)?,
            failed_authentication_limit: positive(&get, "failed_authentication_limit", 10)?,
            admin_token,
            billing_timezone,
            allow_clock_override,
            prometheus_origin: get("prometheus_origin").map(|o| o.trim_end_matches('/').to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_rate_is_accepted_exactly_as_the_contract_writes_it() {
        for ok in ["0", "0.15", "0.000001", "0.999999"] {
            assert!(commission_rate_exact(ok).is_some(), "{ok}");
        }
        for refused in [
            "1",
            "0.",
            ".5",
            "00.5",
            " 0.5",
            "0.5\u{c}",
            "0.1500000",
            "5049930287610111.922\u{c}",
            "+0.5",
        ] {
            assert!(commission_rate_exact(refused).is_none(), "{refused:?}");
        }
    }

    #[test]
    fn the_failed_authentication_limit_is_a_positive_whole_number_ten_unless_set() {
        let config = |limit: Option<&str>| {
            Config::from_variables(|name| match name {
                "admin_token" => Some("an-operator-token-of-16".to_owned()),
                "failed_authentication_limit" => limit.map(str::to_owned),
                _ => None,
            })
        };
        assert_eq!(config(None).unwrap().failed_authentication_limit, 10);
        assert_eq!(
            config(Some("1000")).unwrap().failed_authentication_limit,
            1000
        );
        for refused in ["0", "-1", "ten", ""] {
            assert!(config(Some(refused)).is_err(), "{refused:?}");
        }
    }

    fn database(vars: &[(&str, &str)]) -> Result<DatabaseConfig, String> {
        DatabaseConfig::from_variables(&|name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn sqlite_is_the_default_and_postgres_is_chosen_by_its_variables() {
        assert_eq!(database(&[]).unwrap(), DatabaseConfig::Sqlite);
        assert_eq!(
            database(&[("database", "sqlite")]).unwrap(),
            DatabaseConfig::Sqlite
        );
        let pg = database(&[
            ("database", "postgres"),
            ("postgres_host", "db.internal:6432"),
            ("postgres_database", "market"),
            ("postgres_user", "app"),
            ("postgres_password", "p@ss:w/rd"),
        ])
        .unwrap();
        assert_eq!(
            pg.postgres_url().unwrap(),
            "postgres://app:p%40ss%3Aw%2Frd@db.internal:6432/market"
        );
        assert!(
            !format!("{pg:?}").contains("p@ss"),
            "the password is not logged"
        );
        let defaults = database(&[("database", "postgres")]).unwrap();
        assert_eq!(
            defaults.postgres_url().unwrap(),
            "postgres://nestmarket@127.0.0.1:5432/nestmarket"
        );
    }

    #[test]
    fn a_wrong_database_variable_stops_the_deployment() {
        assert!(database(&[("database", "mysql")]).is_err());
        for host in ["localhost", ":5432", "db:port"] {
            assert!(
                database(&[("database", "postgres"), ("postgres_host", host)]).is_err(),
                "{host}"
            );
        }
    }
}
