"""Packets dropped inside a network namespace with iptables, entered with nsenter: the ``cut``
and ``packet_loss`` of a container, and the ``link_loss`` of a link's proxy in Toxiproxy's.

Every rule is inserted (``-I``) and deleted (``-D``) by the same words, so that a heal removes
exactly what its fault added, and nothing outlives the namespace: removing the container
removes its rules.
"""

from __future__ import annotations

import subprocess

from harness.errors import EnvironmentProblem

Rule = list[str]  # a chain, then the rule's match and target


def chance(share: float) -> list[str]:
    """The match that picks a packet with this chance; none when every packet is meant."""
    if share >= 1:
        return []
    return ["-m", "statistic", "--mode", "random", "--probability", f"{share:.4f}"]


def apply_rules(pid: int, action: str, rules: list[Rule], what: str) -> None:
    """Insert (-I) or delete (-D) each rule in the network namespace of process ``pid``; an
    insert that fails raises, a delete that fails (already gone) does not."""
    for chain, *rule in rules:
        command = ["nsenter", "-t", str(pid), "-n", "iptables", "-w", action, chain, *rule]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 and action == "-I":
            raise EnvironmentProblem(
                f"{what}: {' '.join(command)} failed: {done.stderr.strip()} "
                "(needs root, nsenter and iptables on the harness's host)"
            )
