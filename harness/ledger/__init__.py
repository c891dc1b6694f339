"""The ledger: an account of every message the load sent and the system processed.

``files`` reads and writes its two files (``ledger/sent.jsonl``, ``ledger/processed.jsonl``),
``sources`` reads the processed side from where a system of one's own records its effects,
``summary`` counts what was lost, duplicated, unexpected and recovered, in SQL over the tables
``files`` reads the two files into, with ``order`` (order within keys) and ``deliveries``
(attempts per message, overlapping processings).
"""

from harness.ledger.summary import LedgerSummary, summarize

__all__ = ["LedgerSummary", "summarize"]
