"""A message's key, from an experiment's ``load.key`` template: the load computes it for each
send, the experiment's loading checks the template. Nothing else imported, so that the
locustfile takes it from beside itself."""

from __future__ import annotations

import re

# The sending user's number or its sequence number, either modulo N: "{user}", "{seq % 16}".
KEY_PLACEHOLDER = re.compile(r"\{(user|seq)(?:\s*%\s*([1-9]\d*))?\}")


def message_key(template: str, user: int, seq: int) -> str:
    """The key of a user's ``seq``-th message."""

    def value(match: re.Match[str]) -> str:
        number = user if match.group(1) == "user" else seq
        return str(number % int(match.group(2)) if match.group(2) else number)

    return KEY_PLACEHOLDER.sub(value, template)
