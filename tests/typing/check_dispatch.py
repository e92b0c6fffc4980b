"""Checked by mypy only (`make lint`): every decorator form, every result type, the stubs.

ParamSpec types are spelled with mypy's `Arg(type, "name")` forms, as mypy prints them: the
parameter names and defaults are part of the type, so keywords are checked too.
Each `assert_type` is a claim about what callers see; each `# type: ignore[code]` is a claim
that mypy rejects the line (`warn_unused_ignores` turns a line mypy accepts into an error).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from mypy_extensions import Arg, DefaultArg, DefaultNamedArg

from hexa import AsyncTask, Backoff, RemoteTask, Task, TaskResult, module_task, remote_task


@module_task(module="typing_demo")
def bare(invoice_id: int, note: str = "") -> str:
    return f"{invoice_id}{note}"


@module_task(module="typing_demo")
async def bare_async(invoice_id: int) -> dict[str, int]:
    return {"id": invoice_id}


@module_task(module="typing_demo", retry=Backoff(max_retries=3), queue="q", timeout=5)
def with_options(a: int, *, b: float = 1.0) -> float:
    return a * b


@module_task(module="typing_demo", retry=Backoff(max_retries=3))
async def with_options_async(url: str) -> bytes:
    return url.encode()


@module_task(module="typing_demo", bind=True)
def bound(self: Any, label: str) -> str:
    return label


@module_task(module="typing_demo", bind=True, timeout=3)
async def bound_async(self: Any, count: int) -> list[int]:
    return list(range(count))


@remote_task("typing_demo.remote")
def remote(invoice_id: int, note: str = "") -> str:
    raise NotImplementedError


class typing_demo:
    """A module namespace as `hexa stubs` writes it: a class holding remote tasks."""

    remote = remote


# Every decorator form keeps the signature and the (awaited) result type.
assert_type(bare, Task[[Arg(int, "invoice_id"), DefaultArg(str, "note")], str])
assert_type(bare_async, AsyncTask[[Arg(int, "invoice_id")], dict[str, int]])
assert_type(with_options, Task[[Arg(int, "a"), DefaultNamedArg(float, "b")], float])
assert_type(with_options_async, AsyncTask[[Arg(str, "url")], bytes])
assert_type(bound, Task[[Arg(str, "label")], str])
assert_type(bound_async, AsyncTask[[Arg(int, "count")], list[int]])
assert_type(remote, RemoteTask[[Arg(int, "invoice_id"), DefaultArg(str, "note")], str])
assert_type(bare.name, str)
assert_type(remote.name, str)

# Calling in-process: a sync task runs, an async one gives its coroutine (as the function would).
assert_type(bare(1), str)
coroutine = assert_type(bare_async(1), Coroutine[Any, Any, dict[str, int]])
coroutine.close()

# .send() -> TaskResult[R]; R of an async task is the awaited value, never a coroutine.
assert_type(bare.send(1), TaskResult[str])
assert_type(bare.send(1, note="x").get(timeout=1), str)
assert_type(bare_async.send(1), TaskResult[dict[str, int]])
assert_type(bare_async.send(1).get(), dict[str, int])
assert_type(with_options.send(1, b=2.0).get(), float)
assert_type(with_options_async.send("u").get(), bytes)
assert_type(bound.send("x").get(), str)
assert_type(bound_async.send(3).get(), list[int])
assert_type(remote.send(1).get(), str)
assert_type(typing_demo.remote.send(1, note="n"), TaskResult[str])
assert_type(bare.send(1).id, str)
assert_type(bare.send(1).status, str)
assert_type(bare.send(1).ready(), bool)

# .with_options() returns the same kind of task, with the same typed .send().
assert_type(
    bare.with_options(countdown=5),
    Task[[Arg(int, "invoice_id"), DefaultArg(str, "note")], str],
)
assert_type(
    bare_async.with_options(priority=3, queue="q"),
    AsyncTask[[Arg(int, "invoice_id")], dict[str, int]],
)
assert_type(remote.with_options(expires=60.0).send(1), TaskResult[str])
assert_type(bound.with_options(countdown=1).send("x"), TaskResult[str])


async def from_an_async_endpoint() -> None:
    """`await` a result (or `send_async`) from async code: typed like `.get()`."""
    assert_type(await bare_async.send(1), dict[str, int])
    assert_type(await bare_async.send_async(1), TaskResult[dict[str, int]])
    assert_type(await (await bare.send_async(1)), str)
    assert_type(await bare.send(1).wait(timeout=5), str)
    assert_type(await remote.send_async(2), TaskResult[str])
    await bare.send_async("x")  # type: ignore[arg-type]


# Lines mypy must reject.
bare.send("x")  # type: ignore[arg-type]
bare.send()  # type: ignore[call-arg]
bare.send(1, "a", "b")  # type: ignore[call-arg]
bare.send(1, nte="x")  # type: ignore[call-arg]
bare_async.send("x")  # type: ignore[arg-type]
with_options.send(1, 2.0)  # type: ignore[call-arg]
bound.send("x", "y")  # type: ignore[call-arg]
bound_async.send()  # type: ignore[call-arg]
remote.send("x")  # type: ignore[arg-type]
remote(1)  # type: ignore[operator]
typing_demo.remote.send(invoice="1")  # type: ignore[call-arg]
bare.with_options(retries=3)  # type: ignore[arg-type]
bare.with_options(retry_policy={"max_retries": 3})  # type: ignore[arg-type]
bare.with_options(countdown="soon")  # type: ignore[arg-type]
bare.with_options(countdown=5).send("x")  # type: ignore[arg-type]
x: int = bare.send(1).get()  # type: ignore[assignment]
y: TaskResult[int] = bare_async.send(1)  # type: ignore[assignment]
bare.name = "other"  # type: ignore[misc]
