"""Order within a key, as Jepsen's queue workloads judge it: a message the load sent under a key
(an experiment's ``load.key``) must be processed after every message of that key acknowledged
before it was sent, and none may be passed over.

- ``reordered``: messages processed before a message of their key that was acknowledged before
  they were sent (Jepsen's nonmonotonic poll, in real time, so that keys shared by several load
  users are judged only on the order those users could see).
- ``skipped``: acknowledged messages never processed (and in none of the target's places) while
  a message of their key sent after them was processed (Jepsen's poll-skip).
- ``max_gap``: the longest run of such skipped messages, consecutive in their key's send order.

Processing order is the order of the processed ledger's lines, the sink's own; a processed side
read from a ``ledger:`` source after the drain has none, and then order is not judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.ledger.files import processings_untimed

if TYPE_CHECKING:
    import duckdb

ORDER_VALUES = ("reordered", "skipped", "max_gap")

# Each keyed message: its key, when it was sent and acknowledged, its first processing's place
# in the processed ledger (NULL: never processed) and whether it is lost (by the account).
_KEYED = """
CREATE TEMP TABLE keyed AS
WITH sent AS (
    SELECT id, any_value(key) FILTER (type = 'invoke') AS key,
        min(TRY_CAST(t AS DOUBLE)) FILTER (type = 'invoke') AS sent_at,
        min(TRY_CAST(t AS DOUBLE)) FILTER (type = 'ok') AS acked_at
    FROM send_lines GROUP BY id
), first AS (
    SELECT id, min(n) AS pos FROM processings GROUP BY id
)
SELECT s.id, s.key, s.sent_at, s.acked_at, f.pos, {lost} AS lost
FROM sent s JOIN account a USING (id) LEFT JOIN first f USING (id)
WHERE s.key IS NOT NULL
"""

_REORDERED = """
SELECT count(*), min(id, {examples}) FROM (
    SELECT id, sent_at, min(acked_at) OVER (
        PARTITION BY key ORDER BY pos ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
    ) AS later_acked
    FROM keyed WHERE pos IS NOT NULL
) WHERE later_acked < sent_at
"""

# Islands: the lost messages after a key's i-th processed one (in send order) and before the
# next; those before a key's last processed message were passed over.
_SKIPPED = """
WITH marked AS (
    SELECT id, key, lost, count(pos) OVER (
        PARTITION BY key ORDER BY sent_at, id ROWS UNBOUNDED PRECEDING
    ) AS island, count(pos) OVER (PARTITION BY key) AS done
    FROM keyed
), gaps AS (
    SELECT key, island, count(*) AS size, list(id ORDER BY id) AS ids
    FROM marked WHERE lost AND island < done GROUP BY key, island
)
SELECT coalesce(sum(size), 0), coalesce(max(size), 0),
    list_sort(flatten(list(ids)))[1:{examples}] FROM gaps
"""


def order_of(
    db: duckdb.DuckDBPyConnection, examples: int, lost: str
) -> tuple[dict[str, int], dict[str, list[str]]] | None:
    """The order values and their example ids, from the tables ``send_lines`` (with ``t`` and
    ``key``), ``processings`` (with ``t``) and ``account``, whose rows ``lost`` (the summary's
    condition) tells lost; None when there is no order to
    judge: no message was sent with a key, or the processings carry no times (a ledger source's,
    in no order)."""
    (keys,) = db.execute("SELECT count(key) FROM send_lines").fetchone() or (0,)
    if not keys or processings_untimed(db):
        return None
    db.execute(_KEYED.format(lost=lost))
    reordered, reordered_ids = db.execute(_REORDERED.format(examples=examples)).fetchone() or ()
    skipped, max_gap, skipped_ids = db.execute(_SKIPPED.format(examples=examples)).fetchone() or ()
    counts = {"reordered": int(reordered), "skipped": int(skipped), "max_gap": int(max_gap)}
    return counts, {"reordered": list(reordered_ids or []), "skipped": list(skipped_ids or [])}
