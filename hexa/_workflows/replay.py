"""Dead letters of workflow steps, and replays that resume the workflow after them.

A step that failed for good is dead-lettered as a fresh message; that message keeps what
Celery's worker needs to go on after the step: the rest of the chain, the chord the step
belongs to (its callback, group id and index), its callbacks, errbacks and lineage. Before a
replay, `prepare_replay` forgets the outcomes the replay will produce again (the step's, and
the failures Celery copied onto the steps after it), so `get()` waits for the new ones.

A chord header step needs one thing more. Celery's Redis backend counts each header result
once, by task id, and closes the chord when one of them failed: the callback is marked failed
and the chord size dropped. `reopen_chord` takes the failed result out of the count and puts
the size back, so the replayed step's success completes the chord and fires its callback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.backends.redis import RedisBackend

if TYPE_CHECKING:
    from hexa._dead_letters import DeadLetter


def workflow_fields(request: Any) -> dict[str, Any]:
    """The parts of a failed task's request that place it in a workflow, for `as_task_v2`."""
    return {
        "chain": request.chain,
        "chord": request.chord,
        "group_id": request.group,
        "group_index": request.group_index,
        "callbacks": request.callbacks,
        "errbacks": request.errbacks,
        "root_id": request.root_id,
        "parent_id": request.parent_id,
        "ignore_result": bool(request.ignore_result),
    }


def _embed(letter: DeadLetter) -> Mapping[str, Any]:
    """The `embed` part of a protocol-2 body (`[args, kwargs, embed]`), or {}."""
    try:
        body = json.loads(letter.raw_body())
    except (ValueError, UnicodeDecodeError):
        return {}
    embed = body[2] if isinstance(body, list) and len(body) == 3 else None
    return embed if isinstance(embed, Mapping) else {}


def _task_ids(signature: Any) -> Iterator[str]:
    """Every task id in a serialized signature (a chain, a chord, a group, or a list of them)."""
    if isinstance(signature, list):
        for item in signature:
            yield from _task_ids(item)
        return
    if not isinstance(signature, Mapping):
        return
    options = signature.get("options") or {}
    if options.get("task_id"):
        yield str(options["task_id"])
    yield from _task_ids(options.get("chain"))
    kwargs = signature.get("kwargs") or {}
    for key in ("tasks", "header", "body"):
        yield from _task_ids(kwargs.get(key))


def rerun_ids(letter: DeadLetter) -> list[str]:
    """The task ids a replay of `letter` runs again: its own and those of the steps after it."""
    embed = _embed(letter)
    return [letter.id, *_task_ids(embed.get("chain")), *_task_ids(embed.get("chord"))]


def prepare_replay(app: Celery, letter: DeadLetter) -> None:
    """Run before `letter` is re-published: forget stale outcomes, reopen its chord."""
    for task_id in rerun_ids(letter):
        app.AsyncResult(task_id).forget()
    group_id = letter.headers.get("group")
    if group_id and _embed(letter).get("chord") and isinstance(app.backend, RedisBackend):
        reopen_chord(app.backend, str(group_id), letter.id, letter.headers.get("group_index"))


def reopen_chord(backend: Any, group_id: str, task_id: str, index: Any) -> bool:
    """Take `task_id`'s result out of its chord's count; restore the size if it was dropped.

    Returns False when the chord holds no result of `task_id` (nothing to reopen). Follows
    the keys of Celery 5.x's Redis chord: `.j` results, `.d` counted members, `.s` size,
    `.c` the callback claim.
    """
    client: Any = backend.client
    key = backend.get_key_for_group
    jkey, dkey, skey, ckey, tkey = (key(group_id, end) for end in (".j", ".d", ".s", ".c", ".t"))
    ordered = bool(backend._chord_zset)
    entries = client.zrange(jkey, 0, -1) if ordered else client.lrange(jkey, 0, -1)
    mine = [entry for entry in entries if backend.decode(entry)[1] == task_id]
    if not mine:
        return False
    with client.pipeline() as pipe:
        for entry in mine:
            if ordered:
                pipe.zrem(jkey, entry)
            else:
                pipe.lrem(jkey, 0, entry)
        pipe.srem(dkey, f"{task_id}:{'+inf' if index is None else index}")
        if client.get(skey) is None:  # the chord failed and was closed: open it again
            size = len(entries) - int(client.get(tkey) or 0)
            pipe.set(skey, size, ex=backend.chord_expires or None)
        pipe.delete(ckey)
        pipe.execute()
    return True
