"""Schemathesis hooks of the CI's contract run (`.ci/run`): one narrow filter, nothing else.

Spin 4.0.2 answers `500` with an empty body to any request carrying a header value that is not
UTF-8, before a component runs (trigger-http's `prepare_request_headers`): the runtime's answer,
not the app's, documented in docs/DECISIONS.md. A failure is left out only when it is exactly
that: a `500` with an empty body to a request with such a header. Every other failure counts.
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


@schemathesis.hook
def filter_failure(ctx, failure, case, response) -> bool:
    runtime_refusal = response.status_code == 500 and not response.content
    sent = (case.headers or {}).values()
    return not (runtime_refusal and any(_not_utf8(v) for v in sent))
