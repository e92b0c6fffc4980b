"""Checked by mypy only (`make lint`): workflows, and the links between their steps.

Each `assert_type` is a claim about what callers see; each `# type: ignore[code]` is a claim
that mypy rejects the line (`warn_unused_ignores` turns a line mypy accepts into an error).
The tasks are declared in every form a workflow may hold: sync, async, bound, remote (what
`hexa stubs` writes), and a module namespace as the stubs write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_type

from hexa import (
    TaskResult,
    Workflow,
    WorkflowError,
    WorkflowResult,
    group,
    module_task,
    remote_task,
)


@module_task(module="flows")
def add(x: int, y: int) -> int:
    return x + y


@module_task(module="flows")
def render(value: int, prefix: str = "", *, upper: bool = False) -> str:
    return f"{prefix}{value}"


@module_task(module="flows")
async def total(values: list[int]) -> int:
    return sum(values)


@module_task(module="flows")
def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@module_task(module="flows")
def scale(value: float, factor: float = 2.0) -> float:
    return value * factor


@module_task(module="flows")
def describe(values: list[int | str]) -> str:
    return repr(values)


@module_task(module="flows")
def audit(value: object) -> None:
    print(value)


@module_task(module="flows", bind=True)
def tagged(self: Any, value: str, tag: str) -> dict[str, str]:
    return {tag: value}


@module_task(module="flows")
def keyword_only(*, value: int) -> int:
    return value


@module_task(module="flows")
def no_parameters() -> int:
    return 1


@remote_task("legacy.shout")
def shout(text: str) -> str:
    raise NotImplementedError


class flows:
    """A module namespace as `hexa stubs` writes it: a class holding remote tasks."""

    @staticmethod
    @remote_task("flows.add")
    def add(x: int, y: int) -> int:
        raise NotImplementedError

    @staticmethod
    @remote_task("flows.total")
    def total(values: list[int]) -> int:
        raise NotImplementedError


# .s() on every kind of task: a one-step workflow typed by the task's (awaited) result.
assert_type(add.s(1, 2), Workflow[int])
assert_type(render.s(1, "n=", upper=True), Workflow[str])
assert_type(total.s([1, 2]), Workflow[int])
assert_type(tagged.s("v", "t"), Workflow[dict[str, str]])
assert_type(shout.s("hi"), Workflow[str])
assert_type(flows.add.s(1, 2), Workflow[int])
assert_type(audit.s(1), Workflow[None])
assert_type(add.with_options(queue="fast").s(1, 2), Workflow[int])

# .then(): the previous result is the first argument; the rest are checked against the task.
chain = add.s(1, 2).then(render, "n=", upper=True)
assert_type(chain, Workflow[str])
assert_type(add.s(1, 2).then(render), Workflow[str])
assert_type(add.s(1, 2).then(scale), Workflow[float])  # an int fits a float parameter
assert_type(add.s(1, 2).then(scale, factor=3.0).then(scale), Workflow[float])
assert_type(add.s(1, 2).then(render).then(shout), Workflow[str])  # a seed-format task
assert_type(add.s(1, 2).then(render).then(tagged, "tag"), Workflow[dict[str, str]])
assert_type(add.s(1, 2).then(audit), Workflow[None])  # anything fits `object`
assert_type(shout.s("x").then(shout).then(shout), Workflow[str])

# group(): the list Celery hands the next step, element type the union of the members'.
assert_type(group(add.s(1, 2), add.s(3, 4)), Workflow[list[int]])
assert_type(group(add.s(1, 2), render.s(3)), Workflow[list[int | str]])
assert_type(group(add.s(1, 2), render.s(3), scale.s(1.0)), Workflow[list[int | str | float]])
assert_type(group(*[add.s(i, i) for i in range(50)]), Workflow[list[int]])
assert_type(group(add.s(1, 2).then(add, 1), flows.add.s(1, 1)), Workflow[list[int]])
assert_type(group(audit.s(1)), Workflow[list[None]])

# group(...).then(task) is a chord: the callback takes the list.
assert_type(group(add.s(1, 2), add.s(3, 4)).then(total), Workflow[int])
assert_type(group(*[add.s(i, i) for i in range(100)]).then(flows.total), Workflow[int])
assert_type(group(add.s(1, 2), add.s(3, 4)).then(mean), Workflow[float])  # a Sequence[float]
assert_type(group(add.s(1, 2), render.s(3)).then(describe), Workflow[str])
assert_type(group(add.s(1, 2)).then(total).then(render, "sum="), Workflow[str])
assert_type(group(group(add.s(1, 2)).then(total), add.s(5, 5)), Workflow[list[int]])

# send() / send_async() -> the last step's TaskResult; with_options keeps the type.
assert_type(chain.send(), TaskResult[str])
assert_type(chain.send().get(timeout=10), str)
assert_type(group(add.s(1, 2), add.s(3, 4)).send().get(), list[int])
assert_type(chain.with_options(countdown=5, priority=3, queue="q"), Workflow[str])
assert_type(chain.with_options(expires=60.0).send(), TaskResult[str])
assert_type(add.s(1, 2).then(audit).send(), TaskResult[None])  # its get() raises at once
sent = chain.send()
if isinstance(sent, WorkflowResult):  # what send() returns at run time: each step's task id
    assert_type([step.id for step in sent.steps], list[str])


async def from_an_async_endpoint() -> None:
    assert_type(await chain.send_async(), TaskResult[str])
    assert_type(await (await chain.send_async()), str)


def handle(error: WorkflowError) -> tuple[str, str]:
    return error.step, error.task_id


# Lines mypy must reject.
add.s("1", 2)  # type: ignore[arg-type]
add.s(1)  # type: ignore[call-arg]
render.s(1, nope=True)  # type: ignore[call-arg]
total.s([1], 2)  # type: ignore[call-arg]
tagged.s(object(), "t")  # type: ignore[arg-type]
add.s(1, 2).then(shout)  # type: ignore[arg-type]  # int result, str parameter
render.s(1).then(add, 1)  # type: ignore[arg-type]  # str result, int parameter
add.s(1, 2).then(render, 5)  # type: ignore[arg-type]  # prefix is a str
add.s(1, 2).then(render, upper="yes")  # type: ignore[arg-type]
add.s(1, 2).then(render, value=1)  # type: ignore[call-arg]  # the result already fills it
add.s(1, 2).then(add)  # type: ignore[call-arg]  # y is missing
add.s(1, 2).then(add, 1, 2)  # type: ignore[call-arg]
add.s(1, 2).then(keyword_only)  # type: ignore[arg-type]  # no positional parameter
add.s(1, 2).then(no_parameters)  # type: ignore[arg-type]
add.s(1, 2).then(total)  # type: ignore[arg-type]  # int, not list[int]
scale.s(1.0).then(add, 1)  # type: ignore[arg-type]  # a float does not fit an int
add.s(1, 2).then(audit).then(add, 1)  # type: ignore[arg-type]  # None does not fit an int
group(add.s(1, 2), render.s(3)).then(total)  # type: ignore[arg-type]  # list[int | str]
group(add.s(1, 2), add.s(3, 4)).then(add, 1)  # type: ignore[arg-type]  # a list, not an int
group(scale.s(1.0)).then(total)  # type: ignore[arg-type]  # list[float] is not list[int]
group(add.s(1, 2)).then(render)  # type: ignore[arg-type]
group(add, add)  # type: ignore[call-overload]  # tasks, not workflows
chain.with_options(retries=3)  # type: ignore[arg-type]
chain.with_options(countdown="soon")  # type: ignore[arg-type]
chain.then(shout).then(total)  # type: ignore[arg-type]
x: int = chain.send().get()  # type: ignore[assignment]
y: Workflow[int] = chain  # type: ignore[assignment]
