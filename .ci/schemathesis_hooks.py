"""Schemathesis hooks of the CI's contract run (`.ci/run`): two narrow filters, nothing else
(both documented in docs/DECISIONS.md, "The contract").

- Spin 4.0.2 answers `500` with an empty body to any request carrying a header value that is not
  UTF-8, before a component runs (trigger-http's `prepare_request_headers`): the runtime's
  answer, not the app's. Left out only when it is exactly that: a `500` with an empty body to a
  request with such a header.
- The `ignored_auth` check (ST401) resends a request that succeeded without its token and with
  a wrong one, and expects 401 or 403. Those probes are failed authentications from the run's
  one address, so after ten in a minute the app's throttle (RULES R2.10) answers every
  authentication from it `429` — the probe is refused all the same. Left out only when the
  probe's answer was that `429`; a probe let through (2xx) or answered anything else still fails.

Every other failure counts.
"""

import schemathesis


def _not_utf8(value) -> bool:
    """Whether a header value goes on the wire as bytes that are not UTF-8 (requests sends a
    text value as Latin-1)."""
    raw = value if isinstance(value, bytes) else str(value).encode("latin-1", errors="replace")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _throttled_auth_probe(failure) -> bool:
    """Whether `failure` is an `ignored_auth` probe the throttle refused with its 429."""
    return getattr(failure, "code", None) == "ST401" and "got `429 Too Many Requests`" in str(
        getattr(failure, "message", "")
    )


@schemathesis.hook
def filter_failure(ctx, failure, case, response) -> bool:
    runtime_refusal = response.status_code == 500 and not response.content
    sent = (case.headers or {}).values()
    if runtime_refusal and any(_not_utf8(v) for v in sent):
        return False
    return not _throttled_auth_probe(failure)
