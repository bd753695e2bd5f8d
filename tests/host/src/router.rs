//! HTTP routing as Spin does it: the same `routefinder` crate Spin's router is built on, fed with the
//! manifest's routes the way Spin feeds it (absolute, one trailing slash stripped, `/...` as a trailing
//! wildcard, a later duplicate replacing an earlier one), and the `spin-*` request headers Spin derives
//! from the match.
use anyhow::{Result, anyhow};

#[derive(Debug)]
pub(crate) struct Router {
    routes: routefinder::Router<Handler>,
}

#[derive(Debug, Clone)]
struct Handler {
    component: String,
    /// The route as written in spin.toml.
    raw_route: String,
    /// The route with Spin's normalisation (the application base is always `/` in manifest v2).
    based_route: String,
}

/// The outcome of routing one request path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RouteMatch {
    pub component: String,
    raw_route: String,
    based_route: String,
    /// The part of the path below a trailing wildcard (`spin-path-info`).
    pub path_info: String,
    /// `:name` segments and their values (`spin-path-match-<name>`).
    pub named: Vec<(String, String)>,
}

impl Router {
    /// `routes` are `(route, component id)` pairs in manifest order.
    pub fn build<'a>(routes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut entries: Vec<Handler> = Vec::new();
        for (raw_route, component) in routes {
            let handler = Handler {
                component: component.to_owned(),
                raw_route: raw_route.to_owned(),
                based_route: normalise(raw_route),
            };
            // Spin keeps the first position of a duplicated route but the last component given for it.
            match entries.iter_mut().find(|e| e.raw_route == raw_route) {
                Some(existing) => *existing = handler,
                None => entries.push(handler),
            }
        }
        let mut routes = routefinder::Router::new();
        for handler in entries {
            let spec = match handler.based_route.strip_suffix("/...") {
                Some(prefix) => format!("{prefix}/*"),
                None => handler.based_route.clone(),
            };
            routes.add(spec, handler.clone()).map_err(|e| {
                anyhow!(
                    "route {:?} of component {:?}: {e}",
                    handler.raw_route,
                    handler.component
                )
            })?;
        }
        Ok(Self { routes })
    }

    /// The component that handles `path`, or `None` (Spin answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let found = self.routes.best_match(path)?;
        let handler = found.handler();
        let captures = found.captures();
        // Spin has always reported trailing slashes in the path info; routefinder drops them.
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some("") if path.ends_with('/') => "/".to_owned(),
            Some("") => String::new(),
            Some(rest) if path.ends_with('/') => format!("/{rest}/"),
            Some(rest) => format!("/{rest}"),
        };
        Some(RouteMatch {
            component: handler.component.clone(),
            raw_route: handler.raw_route.clone(),
            based_route: handler.based_route.clone(),
            path_info,
            named: captures
                .params()
                .iter()
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect(),
        })
    }
}

impl RouteMatch {
    /// The headers Spin's HTTP trigger adds to the request it hands to the component.
    pub fn spin_headers(&self, full_url: &str, client_addr: &str) -> Vec<(String, String)> {
        let component_route = self
            .raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route);
        let mut headers = vec![
            ("spin-path-info".to_owned(), self.path_info.clone()),
            ("spin-full-url".to_owned(), full_url.to_owned()),
            ("spin-matched-route".to_owned(), self.based_route.clone()),
            ("spin-base-path".to_owned(), "/".to_owned()),
            (
                "spin-raw-component-route".to_owned(),
                self.raw_route.clone(),
            ),
            (
                "spin-component-route".to_owned(),
                component_route.to_owned(),
            ),
            ("spin-client-addr".to_owned(), client_addr.to_owned()),
        ];
        for (name, value) in &self.named {
            headers.push((
                format!("spin-path-match-{}", name.to_ascii_lowercase()),
                value.clone(),
            ));
        }
        headers
    }
}

/// Spin's `sanitize_with_base("/", route)`: make the route absolute and strip one trailing slash.
fn normalise(route: &str) -> String {
    let absolute = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    match absolute.strip_suffix('/') {
        Some(stripped) => stripped.to_owned(),
        None => absolute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        Router::build(routes.iter().copied()).unwrap()
    }

    fn component(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.component)
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_prefix_wins() {
        let r = router(&[
            ("/api/...", "catch-all"),
            ("/api/v1/me", "exact"),
            ("/api/v1/...", "v1"),
        ]);
        assert_eq!(component(&r, "/api/v1/me").as_deref(), Some("exact"));
        assert_eq!(component(&r, "/api/v1/me/more").as_deref(), Some("v1"));
        assert_eq!(component(&r, "/api/v1").as_deref(), Some("v1"));
        assert_eq!(component(&r, "/api/v2/x").as_deref(), Some("catch-all"));
        assert_eq!(component(&r, "/api").as_deref(), Some("catch-all"));
        assert_eq!(component(&r, "/apix"), None);
        assert_eq!(component(&r, "/other"), None);
    }

    #[test]
    fn exact_route_does_not_match_below_itself() {
        let r = router(&[("/api/v1/me", "exact")]);
        assert_eq!(component(&r, "/api/v1/me/x"), None);
        assert_eq!(component(&r, "/api/v1/me/").as_deref(), Some("exact"));
    }

    #[test]
    fn named_segments_are_captured_and_lose_to_exact_segments() {
        let r = router(&[
            ("/users/:id", "by-id"),
            ("/users/me", "me"),
            ("/users/:id/...", "below"),
        ]);
        let m = r.route("/users/42").unwrap();
        assert_eq!(m.component, "by-id");
        assert_eq!(m.named, vec![("id".to_owned(), "42".to_owned())]);
        assert_eq!(component(&r, "/users/me").as_deref(), Some("me"));
        let m = r.route("/users/7/orders/1").unwrap();
        assert_eq!(m.component, "below");
        assert_eq!(m.path_info, "/orders/1");
    }

    #[test]
    fn later_duplicate_route_wins() {
        let r = router(&[("/x/...", "first"), ("/x/...", "second")]);
        assert_eq!(component(&r, "/x/y").as_deref(), Some("second"));
    }

    #[test]
    fn spin_headers_describe_the_match() {
        let r = router(&[("/foo/:user/...", "c")]);
        let m = r.route("/foo/42/bar/").unwrap();
        let headers = m.spin_headers("http://127.0.0.1:3000/foo/42/bar/?q=1", "127.0.0.1:5000");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("spin-path-info"), Some("/bar/"));
        assert_eq!(
            get("spin-full-url"),
            Some("http://127.0.0.1:3000/foo/42/bar/?q=1")
        );
        assert_eq!(get("spin-matched-route"), Some("/foo/:user/..."));
        assert_eq!(get("spin-raw-component-route"), Some("/foo/:user/..."));
        assert_eq!(get("spin-component-route"), Some("/foo/:user"));
        assert_eq!(get("spin-base-path"), Some("/"));
        assert_eq!(get("spin-client-addr"), Some("127.0.0.1:5000"));
        assert_eq!(get("spin-path-match-user"), Some("42"));
    }
}
