"""Generated task messages, valid and hostile, for the fuzz test of the worker's consumer.

Each message is the keyword arguments of `kombu.Producer.publish` (body as bytes, headers,
content type and encoding, properties), built from a seeded `random.Random` so a failing
run can be replayed from its seed. Three families:

- valid messages for `chaos.echo` in Celery's protocol 2 and protocol 1 (they must run);
- valid messages with one to three fields mutated: every header and body field Celery reads
  on the way to the pool, set to a value of another type, an absurd value, or removed (an
  `eta` is never left in the future: such a message is held until then, a delay, not a fault);
- random messages: random headers, random bytes, random content types and encodings.
"""

from __future__ import annotations

import bz2
import contextlib
import datetime
import decimal
import json
import lzma
import math
import random
import uuid
import zlib
from collections.abc import Callable
from typing import Any

TASK = "chaos.echo"
JSON = "application/json"

#: Fields of a protocol-2 message's headers that Celery reads in the worker.
HEADER_FIELDS = (
    "lang",
    "task",
    "id",
    "shadow",
    "eta",
    "expires",
    "group",
    "group_index",
    "retries",
    "timelimit",
    "root_id",
    "parent_id",
    "argsrepr",
    "kwargsrepr",
    "origin",
    "ignore_result",
    "replaced_task_nesting",
    "stamped_headers",
    "stamps",
    "compression",
    "meth",
)
#: Fields of a protocol-1 body (and of a "hybrid" body) that Celery reads.
BODY_FIELDS = (
    "task",
    "id",
    "args",
    "kwargs",
    "retries",
    "eta",
    "expires",
    "utc",
    "callbacks",
    "errbacks",
    "chord",
    "taskset",
    "group",
    "timelimit",
    "root_id",
    "parent_id",
)
EMBED_FIELDS = ("callbacks", "errbacks", "chain", "chord")
CONTENT_TYPES = (
    JSON,
    JSON,
    JSON,
    "application/x-python-serialize",
    "application/x-yaml",
    "application/x-msgpack",
    "application/data",
    "text/plain",
    "",
    "application/json; charset=utf-8",
    "\x1b[31mred",
)
ENCODINGS = ("utf-8", "utf-8", "binary", "ascii", "latin-1", "utf-16", "no-such-codec", "")
COMPRESSIONS = (
    "application/x-gzip",
    "zlib",
    "gzip",
    "bzip2",
    "application/x-bz2",
    "lzma",
    "xz",
    "application/x-brotli",
    "application/zstd",
    "nonsense",
)


class Fuzzer:
    """Makes `count` messages from `seed`; `kinds` counts how many of each family."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.kinds: dict[str, int] = {}

    # -- values of every type Celery might meet in a header or body field ------------------

    def scalar(self, finite: bool = False) -> Any:
        """A scalar of any type; `finite`: no NaN or infinity (RabbitMQ refuses them in headers)."""
        rng = self.rng
        found = rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                rng.randint(-(2**63), 2**63 - 1),
                rng.random() * 10 ** rng.randint(-3, 12),
                float("inf"),
                float("-inf"),
                float("nan"),
                "",
                "x",
                "10",
                "1e400",
                str(uuid.uuid4()),
                "2020-01-01T00:00:00",
                "2020-13-45T99:99:99",
                "9999-12-31T23:59:59+00:00",
                "0001-01-01T00:00:00",
                "\x00\x1b[2J\x1b[H\r\nfake line",
                "\udcff" if rng.random() < 0.5 else "é€😀",
                rng.randbytes(rng.randint(0, 20)),
                decimal.Decimal("1.5"),
                datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
            ]
        )
        if finite and isinstance(found, float) and not math.isfinite(found):
            return -2.5
        return found

    def value(self, depth: int = 0, big: bool = False) -> Any:
        """Any value; `big`: up to 1 MiB (bodies), else up to 8 KiB (headers must fit a frame)."""
        rng = self.rng
        roll = rng.random()
        if depth < 3 and roll < 0.15:
            return [self.value(depth + 1, big) for _ in range(rng.randint(0, 4))]
        if depth < 3 and roll < 0.3:
            return {self.key(): self.value(depth + 1, big) for _ in range(rng.randint(0, 4))}
        if roll < 0.33:
            return "A" * rng.choice((1024, 8192, 65536, 1024 * 1024) if big else (1024, 8192))
        return self.scalar(finite=not big)

    def key(self) -> str:
        return self.rng.choice(
            [
                "task",
                "id",
                "args",
                "kwargs",
                "x",
                "",
                "\x00",
                "callbacks",
                "options",
                "subtask_type",
            ]
        )

    def signature_like(self) -> Any:
        """Something in the place of a callback/errback/chain/chord signature."""
        rng = self.rng
        good = {
            "task": TASK,
            "args": [1],
            "kwargs": {},
            "options": {},
            "subtask_type": None,
            "immutable": False,
        }
        roll = rng.random()
        if roll < 0.4:
            return self.value()
        if roll < 0.8:
            field = rng.choice([*good, "chord_size"])
            broken = dict(good)
            broken[field] = self.value()
            return broken
        return dict(good, subtask_type=rng.choice(["chain", "group", "chord", "xmap", "nope"]))

    # -- valid messages ----------------------------------------------------------------------

    def v2(self, value: Any) -> tuple[dict[str, Any], list[Any]]:
        task_id = str(uuid.uuid4())
        headers = {
            "lang": "py",
            "task": TASK,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr((value,)),
            "kwargsrepr": "{}",
            "origin": "gen1@fuzz",
            "ignore_result": False,
        }
        embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
        return headers, [[value], {}, embed]

    def v1(self, value: Any) -> dict[str, Any]:
        return {
            "task": TASK,
            "id": str(uuid.uuid4()),
            "args": [value],
            "kwargs": {},
            "retries": 0,
            "eta": None,
            "expires": None,
            "utc": True,
            "callbacks": None,
            "errbacks": None,
            "timelimit": [None, None],
            "taskset": None,
            "chord": None,
        }

    def valid(self) -> dict[str, Any]:
        value = self.rng.choice([1, "text", [1, 2], {"a": 1}, None, "é€😀"])
        if self.rng.random() < 0.7:
            headers, body = self.v2(value)
            return _publishable(json.dumps(body).encode(), headers)
        return _publishable(json.dumps(self.v1(value)).encode(), {})

    # -- mutations -----------------------------------------------------------------------------

    def mutate_header(self, headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
        field = self.rng.choice(HEADER_FIELDS)
        if self.rng.random() < 0.15:
            headers.pop(field, None)
        elif field == "timelimit" and self.rng.random() < 0.6:
            pair = [self.scalar(finite=True), self.scalar(finite=True)]
            headers[field] = pair[: self.rng.randint(0, 3)]
        else:
            headers[field] = self.value()
        return headers, body

    def mutate_body_v2(self, headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
        rng = self.rng
        if not (isinstance(body, list) and len(body) == 3):
            return headers, body  # an earlier mutation replaced the whole body
        roll = rng.random()
        if roll < 0.25:
            body[0] = self.value(big=True)  # args
        elif roll < 0.5:
            body[1] = rng.choice([self.value(big=True), {self.key(): self.value(big=True)}])
        elif roll < 0.8:
            embed = body[2] if isinstance(body[2], dict) else {}
            embed[rng.choice(EMBED_FIELDS)] = rng.choice(
                [self.signature_like(), [self.signature_like()], self.value()]
            )
            body[2] = embed
        else:
            body = rng.choice([self.value(big=True), body[:2], [*body, 1], {"args": body[0]}])
        return headers, body

    def mutate_body_v1(self, body: dict[str, Any]) -> dict[str, Any]:
        field = self.rng.choice(BODY_FIELDS)
        if self.rng.random() < 0.15:
            body.pop(field, None)
        elif field in ("callbacks", "errbacks", "chord"):
            body[field] = self.rng.choice([self.signature_like(), [self.signature_like()]])
        else:
            body[field] = self.value(big=True)
        return body

    def mutated(self) -> dict[str, Any]:
        rng = self.rng
        value = rng.choice([1, "x"])
        if rng.random() < 0.75:
            headers, body = self.v2(value)
            for _ in range(rng.randint(1, 3)):
                mutate = rng.choice([self.mutate_header, self.mutate_body_v2])
                headers, body = mutate(headers, body)
            message = _publishable(_encode(body), _no_future_eta(headers))
        else:
            v1 = self.v1(value)
            for _ in range(rng.randint(1, 3)):
                v1 = self.mutate_body_v1(v1)
            extra = {"task": TASK} if rng.random() < 0.2 else {}  # a "hybrid" message
            message = _publishable(_encode(_no_future_eta(v1)), extra)
        return self.mutate_envelope(message)

    def mutate_envelope(self, message: dict[str, Any]) -> dict[str, Any]:
        """Sometimes: another content type or encoding, bad bytes, or a compression."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.08:
            message["content_type"] = rng.choice(CONTENT_TYPES)
        elif roll < 0.16:
            message["content_encoding"] = rng.choice(ENCODINGS)
        elif roll < 0.22:
            body = bytearray(message["body"])
            for _ in range(rng.randint(1, 4)):
                if body:
                    body[rng.randrange(len(body))] = rng.randrange(256)
            message["body"] = bytes(body)  # utf-8 garbage, broken JSON
        elif roll < 0.3:
            compress(message, rng.choice(COMPRESSIONS), rng)
        return message

    # -- random messages ---------------------------------------------------------------------

    def random(self) -> dict[str, Any]:
        rng = self.rng
        headers = {
            rng.choice([*HEADER_FIELDS, "x-junk"]): self.value() for _ in range(rng.randint(0, 6))
        }
        body = rng.choice(
            [
                rng.randbytes(rng.randint(0, 300)),
                _encode(self.value(big=True)),
                b"",
                b"\xef\xbb\xbf[[], {}, {}]",  # a BOM
                b"[[], {}, {}]" + b" " * rng.randint(0, 10),
            ]
        )
        return {
            "body": body,
            "headers": headers,
            "content_type": rng.choice(CONTENT_TYPES),
            "content_encoding": rng.choice(ENCODINGS),
        }

    # -- the batch -----------------------------------------------------------------------------

    def messages(self, count: int) -> list[dict[str, Any]]:
        families: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            *[("valid", self.valid)] * 4,
            *[("mutated", self.mutated)] * 13,
            *[("random", self.random)] * 3,
        ]
        made = []
        for _ in range(count):
            name, make = self.rng.choice(families)
            made.append(make())
            self.kinds[name] = self.kinds.get(name, 0) + 1
        return made


def _no_future_eta(fields: Any) -> Any:
    """An `eta` in the future is held until then (a delay, not a fault): make it past."""
    if not isinstance(fields, dict):
        return fields
    eta = fields.get("eta")
    when = eta if isinstance(eta, datetime.datetime) else None
    if isinstance(eta, str):
        with contextlib.suppress(ValueError):
            when = datetime.datetime.fromisoformat(eta)
    if when is not None:
        aware = when if when.tzinfo else when.replace(tzinfo=datetime.UTC)  # naive means UTC
        if aware > datetime.datetime.now(datetime.UTC):
            fields["eta"] = "2020-01-01T00:00:00+00:00"
    return fields


def _encode(value: Any) -> bytes:
    """JSON where JSON can say it (bytes as latin-1 text), else its repr."""
    try:
        return json.dumps(value, default=_fallback).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return repr(value).encode("utf-8", "surrogatepass")


def _fallback(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _publishable(body: bytes, headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "body": body,
        "headers": headers,
        "content_type": JSON,
        "content_encoding": "utf-8",
    }


def compress(message: dict[str, Any], method: str, rng: random.Random) -> None:
    """Compress the body (sometimes not, or a bomb) and name `method` in the header."""
    body = message["body"]
    if rng.random() < 0.2:
        body = body + b" " * (64 * 1024 * 1024)  # inflates to 64 MiB: a small bomb
    packed = {
        "zlib": zlib.compress,
        "gzip": zlib.compress,
        "application/x-gzip": zlib.compress,
        "bzip2": bz2.compress,
        "application/x-bz2": bz2.compress,
        "lzma": lzma.compress,
        "xz": lzma.compress,
    }.get(method, lambda raw: raw)
    message["body"] = packed(body) if rng.random() < 0.9 else rng.randbytes(64)
    message["headers"]["compression"] = method
