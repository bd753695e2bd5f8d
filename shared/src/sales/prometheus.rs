//! A Prometheus-reported item's settings, built valid: the endpoint is an origin and a plain path
//! (nothing that could reach the query string), and the query is a metric selector, parsed, that
//! the instance's label is always added to. A query sent to Prometheus is rebuilt from the parsed
//! parts, never spliced from the provider's text: one provider cannot ask for another tenant's
//! metrics, or for anything but one instance's increase.

use std::fmt;

/// The label every provider's metrics carry to tell instances apart; always matched by the app.
pub(crate) const INSTANCE_LABEL: &str = "service_instance_id";

/// The longest endpoint and query accepted.
const ENDPOINT_MAX: usize = 512;
const QUERY_MAX: usize = 2_000;

/// `http[s]://host[:port][/path]`: no user info, query, fragment or escapes. The Prometheus HTTP
/// API's own path (`/api/v1/query`) is appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// As the provider wrote it (shown back so).
    text: String,
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            "an http:// or https:// origin, optionally with a path of letters, digits and \
             `-._~/` (no query, fragment or user info)"
                .to_owned()
        };
        if text.len() > ENDPOINT_MAX {
            return Err(format!("at most {ENDPOINT_MAX} characters"));
        }
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or_else(invalid)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
        let path_ok = path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c));
        if host_ok && port_ok && path_ok {
            Ok(Self {
                text: text.to_owned(),
            })
        } else {
            Err(invalid())
        }
    }

    /// The origin and path, without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        self.text.trim_end_matches('/')
    }

    /// The endpoint of the instant-query API.
    pub(crate) fn query_api(&self) -> String {
        format!("{}/api/v1/query", self.base())
    }

    /// As the provider wrote it.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// How a label matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    const fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    label: String,
    op: MatchOp,
    value: String,
}

/// A metric selector, `name` or `name{label="value",…}`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    metric: String,
    matchers: Vec<Matcher>,
    /// As the provider wrote it (shown back so; never sent).
    text: String,
}

fn is_name(name: &str, allow_colon: bool) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':'))
}

impl Selector {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            format!(
                "a metric selector such as `requests_total{{job=\"api\"}}` ({why}): the \
                 instance label is added to it"
            )
        };
        if text.chars().count() > QUERY_MAX {
            return Err(format!("at most {QUERY_MAX} characters"));
        }
        let written = text;
        let text = text.trim();
        let (metric, rest) = text.split_at(text.find('{').unwrap_or(text.len()));
        if !is_name(metric, true) {
            return Err(invalid("a metric name first"));
        }
        let mut matchers = Vec::new();
        if !rest.is_empty() {
            let body = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| invalid("label matchers close with `}`"))?;
            let mut input = body.trim_start();
            while !input.is_empty() {
                let (matcher, after) =
                    parse_matcher(input).ok_or_else(|| invalid("label=\"value\""))?;
                if matcher.label == INSTANCE_LABEL {
                    return Err(invalid("the instance label is the app's to match"));
                }
                matchers.push(matcher);
                input = after.trim_start();
                match input.strip_prefix(',') {
                    Some(after_comma) => input = after_comma.trim_start(),
                    None if input.is_empty() => {}
                    None => return Err(invalid("matchers are separated by commas")),
                }
            }
        }
        Ok(Self {
            metric: metric.to_owned(),
            matchers,
            text: written.to_owned(),
        })
    }

    /// As the provider wrote it.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The selector restricted to one instance: its matchers, then the instance's.
    pub(crate) fn for_instance(&self, instance_id: &str) -> String {
        let mut matchers: Vec<String> = self.matchers.iter().map(Matcher::to_string).collect();
        matchers.push(
            Matcher {
                label: INSTANCE_LABEL.to_owned(),
                op: MatchOp::Equal,
                value: instance_id.to_owned(),
            }
            .to_string(),
        );
        format!("{}{{{}}}", self.metric, matchers.join(","))
    }
}

/// One `label op "value"` at the start of `input`, and what follows it.
fn parse_matcher(input: &str) -> Option<(Matcher, &str)> {
    let name_end = input
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(input.len());
    let (label, rest) = input.split_at(name_end);
    if !is_name(label, false) {
        return None;
    }
    let rest = rest.trim_start();
    let (op, rest) = [
        ("=~", MatchOp::Regex),
        ("!~", MatchOp::NotRegex),
        ("!=", MatchOp::NotEqual),
        ("=", MatchOp::Equal),
    ]
    .into_iter()
    .find_map(|(text, op)| rest.strip_prefix(text).map(|r| (op, r)))?;
    let rest = rest.trim_start().strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let matcher = Matcher {
                    label: label.to_owned(),
                    op,
                    value,
                };
                return Some((matcher, &rest[i + 1..]));
            }
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                escaped @ ('"' | '\\') => value.push(escaped),
                _ => return None,
            },
            c => value.push(c),
        }
    }
    None
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(f, "{}{}\"{value}\"", self.label, self.op.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_an_origin_and_a_plain_path() {
        for ok in [
            "http://prom:9090",
            "https://metrics.example.com",
            "http://127.0.0.1:9090/",
            "https://gw.example.com/prometheus/eu-1",
        ] {
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://prom",
            "prom:9090",
            "http://",
            "http://prom:port",
            "http://user:pass@prom",
            "http://prom/api/v1/query?query=sum(other_tenant_metric)&x=",
            "http://prom/#frag",
            "http://prom/%2e%2e",
            "http://prom /x",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Endpoint::parse("http://prom:9090/").unwrap().query_api(),
            "http://prom:9090/api/v1/query"
        );
    }

    #[test]
    fn selectors_are_parsed_and_rebuilt_with_the_instance() {
        let s = Selector::parse(r#"reqs_total{job="api", path=~"/v1/.*" ,}"#).unwrap();
        assert_eq!(
            s.for_instance("si-1"),
            r#"reqs_total{job="api",path=~"/v1/.*",service_instance_id="si-1"}"#
        );
        assert_eq!(
            Selector::parse("reqs_total").unwrap().for_instance("si-1"),
            r#"reqs_total{service_instance_id="si-1"}"#
        );
        assert_eq!(
            Selector::parse(r#"x{a="say \"hi\"\\"}"#)
                .unwrap()
                .for_instance("si-1"),
            r#"x{a="say \"hi\"\\",service_instance_id="si-1"}"#
        );
    }

    #[test]
    fn anything_but_a_selector_of_ones_own_metrics_is_refused() {
        for bad in [
            "",
            "9lives",
            "sum(rate(x[5m]))",
            "x{a=\"1\"} or vector(1)",
            "x{a=\"1\"}} or y{",
            r#"x{a="1" b="2"}"#,
            r#"x{a=1}"#,
            r#"x{a="unterminated}"#,
            r#"x{service_instance_id=~".*"}"#,
            r#"x{a="\q"}"#,
            "x{",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
