"""A few thousand generated messages on a real worker: it never exits, and each one is accounted.

The messages (see `tests.chaos.fuzz`) are published raw with kombu, each with its own
`correlation_id`, onto a queue of the chaos suite's own RabbitMQ node. Every message must end
in exactly one of: ran (`task.succeeded`), dead-lettered (refused, or failed for good: the
letter keeps the correlation id), or expired (an `expires` already past: Celery discards it
as asked). A valid task sent after the batch must still run. `HEXA_FUZZ_COUNT` and
`HEXA_FUZZ_SEED` change the batch; a failing seed replays exactly.
"""

from __future__ import annotations

import bz2
import collections
import json
import lzma
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue

import hexa
from hexa._app import HexaCelery
from hexa._options import SendOptions
from hexa._publisher import publish
from tests.chaos.conftest import CHAOS_PROJECT, Row, report
from tests.chaos.fuzz import Fuzzer
from tests.chaos.services import OwnRabbitMQ, OwnRedis
from tests.chaos.test_faults import assert_json_stderr
from tests.conftest import StartWorker
from tests.support.services import unique
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.chaos

COUNT = int(os.environ.get("HEXA_FUZZ_COUNT", "3000"))
SEED = int(os.environ.get("HEXA_FUZZ_SEED", "20261202"))
#: A small inflation limit keeps the generated compression bombs cheap to refuse.
LIMIT = 8 * 1024 * 1024
_INFLATE: dict[str, Any] = dict.fromkeys(("gzip", "zlib", "application/x-gzip"), zlib)
_INFLATE |= dict.fromkeys(("bzip2", "application/x-bz2"), bz2)
_INFLATE |= dict.fromkeys(("lzma", "xz"), lzma)


def publish_all(url: str, queue: str, messages: list[dict[str, Any]]) -> list[int]:
    """Publish each message (confirmed); the indices RabbitMQ took."""
    sent: list[int] = []
    conn = Connection(url, transport_options={"confirm_publish": True})
    Queue(queue, routing_key=queue)(conn.default_channel).declare()
    try:
        for index, message in enumerate(messages):
            try:
                conn.Producer().publish(
                    exchange="", routing_key=queue, correlation_id=f"fuzz-{index}", **message
                )
            except Exception:  # the broker refused it (a header it cannot store)
                conn.close()
                conn = Connection(url, transport_options={"confirm_publish": True})
            else:
                sent.append(index)
    finally:
        conn.close()
    return sent


def task_id_of(message: dict[str, Any]) -> Any:
    """The id Celery would read: the header, else the (inflated) protocol-1 body's."""
    headers = message["headers"]
    if "id" in headers:  # protocol 2, or a hybrid whose headers name it
        return headers["id"]
    body = message["body"]
    inflate = _INFLATE.get(headers.get("compression", ""))
    try:
        decoded = json.loads(inflate.decompress(body) if inflate else body)
    except Exception:
        return None
    return decoded.get("id") if isinstance(decoded, dict) else None


def outcome_ids(worker: WorkerProcess, ids: set[str]) -> tuple[list[str], list[str]]:
    """Ids of the tasks that ran, and of those Celery discarded as expired."""
    ran = [str(e["task_id"]) for e in worker.events("task.succeeded") if "task_id" in e]
    expired = []
    for event in worker.events():
        text = str(event.get("event", ""))
        if text.startswith("Discarding revoked task"):
            expired += [i for i in ids if text.endswith(f"[{i}]")][:1]
    return ran, expired


def depth(url: str, queue: str) -> int:
    """Messages waiting in `queue` (0 when it does not exist)."""
    with Connection(url) as conn:
        try:
            return int(conn.channel().queue_declare(queue, passive=True).message_count)
        except Exception:  # NotFound: nothing was ever sent there
            return 0


def settle(worker: WorkerProcess, url: str, queue: str, total: int, timeout: float) -> None:
    """Wait until the queue is empty and the outcomes add up (or stop changing)."""
    deadline, last, still = time.monotonic() + timeout, None, 0
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, f"the worker exited:\n{worker.output()}"
        waiting, dead = depth(url, queue), depth(url, queue + "-derived.dead")
        seen = (waiting, dead, len(worker.lines))
        still = still + 1 if seen == last else 0
        last = seen
        if waiting == 0 and (still >= 10 or dead + len(worker.events("task.succeeded")) >= total):
            return
        time.sleep(0.5)
    raise AssertionError(f"not settled in {timeout}s: {last}")


class TestFuzz:
    @pytest.mark.timeout(900)
    def test_every_generated_message_runs_or_is_dead_lettered_and_the_worker_stays_up(
        self,
        own_rabbitmq: OwnRabbitMQ,
        own_redis: OwnRedis,
        project: Callable[..., Path],
        start_worker: StartWorker,
        client: Callable[[dict[str, str]], HexaCelery],
    ) -> None:
        queue = unique("chaos-fuzz")
        env = {
            "RABBITMQ_URL": own_rabbitmq.url(),
            "REDIS_URL": own_redis.url(),
            # Callbacks a message asks for are published to the default queue: not consumed
            # here, so they do not mix with the batch (counted as "derived").
            "HEXA_DEFAULT_QUEUE": queue + "-derived",
            "HEXA_MAX_MESSAGE_SIZE": str(LIMIT),
            "CHAOS_RECORD_URL": own_redis.url(1),
        }
        url = env["RABBITMQ_URL"]
        worker = start_worker(project(CHAOS_PROJECT), env, ["--concurrency=2", f"--queues={queue}"])
        fuzzer = Fuzzer(SEED)
        messages = fuzzer.messages(COUNT)
        started = time.monotonic()
        sent = publish_all(url, queue, messages)
        settle(worker, url, queue, len(sent), timeout=600)
        took = time.monotonic() - started

        letters = hexa.DeadLetterStore(hexa.Settings.from_env(environ=env)).letters()
        marks = [str(letter.properties.get("correlation_id", "")) for letter in letters]
        strays = [
            (lt.id, lt.reason) for lt, m in zip(letters, marks, strict=True) if "fuzz-" not in m
        ]
        assert not strays, f"dead letters that name no message: {strays[:5]}"
        by_index = collections.Counter(int(mark.removeprefix("fuzz-")) for mark in marks)
        assert not [i for i, n in by_index.items() if n > 1], "a message was dead-lettered twice"
        assert set(by_index) <= set(sent), "a dead letter of no message sent"
        left = [i for i in sent if i not in by_index]
        ids = [str(task_id_of(messages[i])) for i in left]
        ran, expired = outcome_ids(worker, set(ids))
        ended, expected = (
            collections.Counter(ran) + collections.Counter(expired),
            collections.Counter(ids),
        )
        assert ended == expected, (
            f"ended but not sent: {list((ended - expected).items())[:5]}; "
            f"sent but never ended: {list((expected - ended).items())[:5]}"
        )

        after_options = SendOptions(queue=queue)
        after = publish("chaos.echo", ["after the batch"], {}, after_options, app=client(env))
        assert after.get(timeout=60) == "after the batch"
        assert worker.proc.poll() is None
        output = "\n".join(worker.lines)
        for fatal in ("Unrecoverable error", "Internal error", "Pool callback raised"):
            assert fatal not in output
        assert_json_stderr(worker)

        failed = sum(letter.reason.startswith("failed after") for letter in letters)
        counts = {
            "sent": len(sent),
            "refused by RabbitMQ": COUNT - len(sent),
            "ran": len(ran),
            "dead-lettered (refused)": len(letters) - failed,
            "dead-lettered (task failed)": failed,
            "expired": len(expired),
            "derived (callbacks asked for, left queued)": depth(url, queue + "-derived"),
            **{f"generated {kind}": n for kind, n in sorted(fuzzer.kinds.items())},
        }
        print(f"\nfuzz seed {SEED}: {json.dumps(counts)} in {took:.0f}s")
        note = (
            f"seed {SEED}: ran {len(ran)}, dead-lettered {len(letters)} ({failed} failed), "
            f"expired {len(expired)}, {took:.0f}s"
        )
        accounted = len(ran) + len(letters) + len(expired)
        report(Row("fuzz (generated messages)", len(sent), accounted, 0, 0, None, note))
        assert accounted == len(sent)
