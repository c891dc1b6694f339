"""The Redis broker's own failure modes, as the target's faults run them (``faults:`` in
redis-streams.yaml), from the harness's host: ``faults.py HOST:PORT ACTION [ARG]``.

- ``pause MODE MS`` / ``unpause``: ``CLIENT PAUSE`` (WRITE: reads go on, writes wait; ALL:
  every client waits), as a failover or a stalled fork does; the pause also ends by itself
  after MS, so a harness killed outright leaves none for long.
- ``squeeze-memory`` / ``lift-memory``: ``maxmemory`` set to what Redis uses now, so that the
  next writes find no room (refused, or room made by evicting keys, as its maxmemory-policy
  says), then the limit lifted.

Every change is Redis's runtime state: a restart of the broker undoes it too.
"""

from __future__ import annotations

import sys

import redis


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    host, _, port = argv[0].rpartition(":")
    client = redis.Redis(
        host=host.strip("[]"), port=int(port), socket_timeout=5, decode_responses=True
    )
    action, args = argv[1], argv[2:]
    if action == "pause" and len(args) == 2:
        mode, ms = args
        client.execute_command("CLIENT", "PAUSE", int(ms), mode.upper())
    elif action == "unpause":
        client.execute_command("CLIENT", "UNPAUSE")
    elif action == "squeeze-memory":
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used)
        print(f"maxmemory {used}")
    elif action == "lift-memory":
        client.config_set("maxmemory", 0)
    else:
        print(f"unknown action {' '.join(argv[1:])!r}\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
