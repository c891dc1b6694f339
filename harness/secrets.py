"""One rule for what the harness never writes out: passwords and tokens in URLs, DSNs and
``--set`` values.

A run's artefacts (journal, events, report, JUnit) and its console lines are read by whoever
reads CI logs; the URL of a ledger, the password of a database a worker needs or a Grafana
password must not reach them. A URL's password is masked, and so is the value of anything
whose name looks secret (``PASSWORD``, ``TOKEN``, ``SECRET``, ``API_KEY``, ...): a query
parameter, a ``key=value`` pair of a DSN, a ``--set`` path. Masking never fails: text it
cannot parse is masked more, not less.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

MASK = "***"
# KEY only as part of a longer name (API_KEY, ACCESS-KEY): a ledger's plain ``key`` names a
# Redis key, not a secret.
_SECRET_NAME = re.compile(
    r"PASS|PWD|TOKEN|SECRET|CREDENTIAL|AUTH|[_-]KEY|KEY[_-]|APIKEY", re.IGNORECASE
)
# A URL inside any text: a scheme, then everything up to a space or a quote.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# key=value pairs (a libpq DSN, a query string, a --set) whose key is secret-named.
_PAIR = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,)]+)")


def secret_name(name: str) -> bool:
    """Whether a variable, field or parameter of this name holds a secret."""
    return bool(_SECRET_NAME.search(name))


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The harness's environment as the processes it starts inherit it: without what is
    secret-named (a GRAFANA_TOKEN, an AWS_SECRET_ACCESS_KEY). A component that needs one is
    given it by its target's ``env`` (or ``--set NAME.env.VAR=...``)."""
    return {name: value for name, value in environ.items() if not secret_name(name)}


def url(text: str) -> str:
    """The URL with its password and its secret-named query parameters masked."""
    try:
        parts = urllib.parse.urlsplit(text)
        password = parts.password
    except ValueError:  # such as an unclosed "[" in the host: mask all between // and @
        return re.sub(r"(//)[^/@]*@", rf"\1{MASK}@", text, count=1)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=_pairs(parts.query)))


def text(value: str) -> str:
    """Free text (an error message, a description) with every URL in it masked, and every
    secret-named ``key=value`` pair."""
    return _pairs(_URL.sub(lambda found: url(found.group(0)), value))


def assignment(value: str) -> str:
    """A ``--set PATH=VALUE`` with the value masked when the path's last part is secret-named,
    and any URL in the value masked in any case."""
    path, sep, given = value.partition("=")
    if not sep:
        return value
    if secret_name(path.rsplit(".", 1)[-1]):
        return f"{path}={MASK}"
    return f"{path}={text(given)}"


def _pairs(value: str) -> str:
    def masked(found: re.Match[str]) -> str:
        if not secret_name(found.group("key")):
            return found.group(0)
        return f"{found.group('key')}={MASK}"

    return _PAIR.sub(masked, value)
