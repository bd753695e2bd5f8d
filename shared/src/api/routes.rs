//! The vocabulary of the route tables (one per API area, `super::Api::routes`): a route is a
//! path below `/api/v1/` and, per method, the handler that serves it and what an
//! `Idempotency-Key` does there. Dispatch, the `405` with its `Allow`, the idempotency guard and
//! the body limits are all read from the tables, so a route is written once; nothing is run to
//! learn whether a route exists.

use http::Method;

use super::{Ctx, JSON_BODY_MAX, Resp};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::Guard;
use crate::listing::media::MediaKind;

/// What serves one method of a route.
pub(crate) type Handler = fn(&Ctx) -> ApiResult<Resp>;

/// What an `Idempotency-Key` does on a request (docs/RULES.md R1.13; `openapi.yaml` says it of
/// each operation). Only a `POST` takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// Ignored: the request writes nothing, so it is served as it is, never under the write
    /// lock, and nothing of it is recorded (a quote, a preview; every other method than POST).
    Ignored,
    /// Refused (400): the request issues a token, which is shown once and never stored.
    Refused,
    /// Guarded as [`Guard`] says.
    Guarded(Guard),
}

/// The methods routes take (`http::Method` cannot live in a table: it may own its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

/// One method of a route: its handler and what a key does there.
pub(crate) struct Serve {
    pub verb: Verb,
    pub handler: Handler,
    pub key: KeyUse,
}

pub(crate) const fn get(handler: Handler) -> Serve {
    Serve {
        verb: Verb::Get,
        handler,
        key: KeyUse::Ignored,
    }
}

pub(crate) const fn put(handler: Handler) -> Serve {
    Serve {
        verb: Verb::Put,
        handler,
        key: KeyUse::Ignored,
    }
}

pub(crate) const fn delete(handler: Handler) -> Serve {
    Serve {
        verb: Verb::Delete,
        handler,
        key: KeyUse::Ignored,
    }
}

/// A `POST` that writes in one transaction: a key makes a retry replay the first answer.
pub(crate) const fn post(handler: Handler) -> Serve {
    post_keyed(handler, KeyUse::Guarded(Guard::Atomic))
}

/// A `POST` whose key use is not the usual one.
pub(crate) const fn post_keyed(handler: Handler, key: KeyUse) -> Serve {
    Serve {
        verb: Verb::Post,
        handler,
        key,
    }
}

/// What a route's body may be, and so how large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// JSON (or none): at most [`JSON_BODY_MAX`].
    Json,
    /// A media file of the slot's `{kind}`: at most that kind's limit, whatever the method.
    MediaFile,
}

/// A path below `/api/v1/` — literal segments and `{name}` parameters — and what serves it.
pub(crate) struct Route {
    pub path: &'static str,
    /// Whether the parameters name something that exists (a step, a media kind): a path whose
    /// parameters do not is no route (404).
    pub accepts: fn(&Params) -> bool,
    /// The methods it takes, in the order `Allow` lists them.
    pub serves: &'static [Serve],
    pub body: Body,
}

fn any(_: &Params) -> bool {
    true
}

/// A route taking any value of its parameters, with a JSON body.
pub(crate) const fn route(path: &'static str, serves: &'static [Serve]) -> Route {
    Route {
        path,
        accepts: any,
        serves,
        body: Body::Json,
    }
}

/// The parameters of a matched path, by name.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: Vec<(&'static str, String)>,
}

impl Params {
    /// The value of parameter `name` (`""` for a name the route does not have).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl Route {
    /// The parameters of `segments` if this route's path takes them.
    pub(crate) fn matches(&self, segments: &[String]) -> Option<Params> {
        let pattern: Vec<&'static str> = self.path.split('/').collect();
        if pattern.len() != segments.len() {
            return None;
        }
        let mut params = Params::default();
        for (part, segment) in pattern.into_iter().zip(segments) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => params.values.push((name, segment.clone())),
                None if part == segment => {}
                None => return None,
            }
        }
        (self.accepts)(&params).then_some(params)
    }

    /// What serves `method` here, if any.
    pub(crate) fn serving(&self, method: &Method) -> Option<&Serve> {
        self.serves
            .iter()
            .find(|s| s.verb.as_str() == method.as_str())
    }

    /// The `405` of a method this route does not take, with the methods it does.
    pub(crate) fn not_allowed(&self) -> ApiError {
        let allow: Vec<&str> = self.serves.iter().map(|s| s.verb.as_str()).collect();
        ApiError::method_not_allowed(allow.join(", "))
    }

    /// The largest body a request to this path may carry.
    pub(crate) fn body_limit(&self, params: &Params) -> usize {
        match self.body {
            Body::Json => JSON_BODY_MAX,
            Body::MediaFile => {
                MediaKind::parse(params.get("kind")).map_or(JSON_BODY_MAX, MediaKind::max_bytes)
            }
        }
    }
}

/// The segments of a path below `/api/v1/`, decoded; `None` for a path outside it.
pub(crate) fn segments_of(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("/api/v1/")?;
    Some(rest.split('/').map(crate::validate::path_segment).collect())
}
