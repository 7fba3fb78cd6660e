"""Promotion order (docs/domain.md, "Promotion order"): the order environments are shown in, and which one a
release is promoted to next.

An environment comes after every environment its `policy:requires:<env-id>` refs name (the gate lets a release
in only by promotion from there); where the refs leave a choice, by `order` (unordered environments after the
ordered ones), then by name. That is: of the environments whose required ones are all placed, the first by
(order, name) goes next (Kahn's algorithm, smallest first), so `order` decides wherever the refs allow.

Refs can close a cycle (a requires b, b requires a: each was valid when it was saved). When nothing left is
free of requirements, the first left by (order, name) goes next as if what it requires were placed, so the
order is total and the same for the same data, whatever the refs say.

The order is kept on each environment (`Environment.promotion_rank`, 0 first), renumbered in the transaction
of every save that can change it and after every fixture load, so lists order by a column (`PROMOTION_ORDER`).
This module imports no model: the migration that fills the column uses it with its historical model.
"""

import heapq
from collections.abc import Iterable, Sequence

from services import policy_refs

PROMOTION_ORDER = ("promotion_rank", "name")  # a total order: names are unique
REQUIRES = "policy:requires:"
# The fields whose change can move an environment (or others) in the order.
ORDERED_BY = ("name", "order", "policy_refs")


def required(refs) -> list[str]:
    """The environments `refs` (a stored list) require, in the refs' order. A ref that no longer parses
    (written past validation) requires nothing here: ordering never refuses what the gate would judge."""
    found = []
    for text in refs if isinstance(refs, list) else ():
        if isinstance(text, str) and text.startswith(REQUIRES):
            try:
                found.append(policy_refs.parse(text).environment)
            except ValueError:
                continue
    return found


def ordered(environments: Iterable[tuple[str, str, int | None, list]]) -> list[str]:
    """The ids of `environments`, given as (id, name, order, policy refs), in promotion order. Refs naming an
    environment not among them, or the environment itself, are ignored."""
    rows = {env_id: (name, order, refs) for env_id, name, order, refs in environments}
    key = {env_id: (order is None, order or 0, name, env_id) for env_id, (name, order, _) in rows.items()}
    waiting_on: dict[str, int] = {}
    followers: dict[str, list[str]] = {env_id: [] for env_id in rows}
    for env_id, (_, _, refs) in rows.items():
        requires = {other for other in required(refs) if other in rows and other != env_id}
        waiting_on[env_id] = len(requires)
        for other in requires:
            followers[other].append(env_id)
    ready = [key[env_id] for env_id, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    placed: list[str] = []
    done: set[str] = set()
    while len(placed) < len(rows):
        if not ready:  # a cycle: the first left goes next, as if what it requires were placed
            heapq.heappush(ready, min(key[env_id] for env_id in rows if env_id not in done))
        env_id = heapq.heappop(ready)[-1]
        if env_id in done:
            continue
        done.add(env_id)
        placed.append(env_id)
        for follower in followers[env_id]:
            waiting_on[follower] -= 1
            if waiting_on[follower] == 0 and follower not in done:
                heapq.heappush(ready, key[follower])
    return placed


def renumber(model) -> dict[str, int]:
    """Store every environment's place in promotion order (`model`: Environment, or a migration's historical
    one); returns them all by id. One query, and an UPDATE per environment that moved."""
    rows = list(model._default_manager.values_list("id", "name", "order", "policy_refs", "promotion_rank"))
    stored = {env_id: rank for env_id, *_, rank in rows}
    ranks = {env_id: rank for rank, env_id in enumerate(ordered(row[:4] for row in rows))}
    for env_id, rank in ranks.items():
        if stored[env_id] != rank:
            model._default_manager.filter(pk=env_id).update(promotion_rank=rank)
    return ranks


def promotion_targets(source, environments: Sequence) -> tuple[object | None, list]:
    """Where a release in `source` is offered promotion, from `environments` (its service's, in promotion
    order): `(next, offered)`. `next` is the first of them whose `policy:requires` names `source`, else the
    first after `source`, else None (nothing comes after it); `offered` is `next` first, then the others in
    promotion order: never `source` itself, nor an archived environment (a promotion there is refused)."""
    ids = [env.pk for env in environments]
    position = ids.index(source.pk) if source.pk in ids else len(ids)
    open_ = [(i, env) for i, env in enumerate(environments) if env.pk != source.pk and env.archived_at is None]
    following = next((env for _, env in open_ if source.pk in required(env.policy_refs)), None)
    first = following or next((env for i, env in open_ if i > position), None)
    return first, ([first] if first else []) + [env for _, env in open_ if env is not first]
