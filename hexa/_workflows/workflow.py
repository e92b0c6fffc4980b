"""`Workflow[R]`: tasks chained and grouped, typed by the value the last step returns.

`task.s(...)` makes a one-step workflow; `.then(task, ...)` adds a step that receives the
previous result as its first argument (type checkers hold the link to the task's first
parameter, through `Concatenate`); `group(...)` runs workflows in parallel and gives the list
of their results, the list Celery passes to the next step (a chord) at run time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Never, ParamSpec, TypeVar, overload

import anyio.to_thread

from hexa._options import SendOptions, refuse_unknown_options
from hexa._result import TaskResult
from hexa._workflows.canvas import publish_workflow
from hexa._workflows.steps import Node, chained, grouped, next_step, with_options

if TYPE_CHECKING:
    from hexa._task import BaseTask

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)
R2 = TypeVar("R2")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")


class Workflow(Generic[R_co]):
    """Steps to run on workers, typed by what the last one returns. Immutable.

    Built on Celery's canvas: `send()` publishes a chain, group or chord that any Celery
    worker runs, and returns the `TaskResult` of the last step.
    """

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    def then(
        self,
        task: BaseTask[Concatenate[R_co, P], R2],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Workflow[R2]:
        """Run `task` next, with this workflow's result as its first argument.

        `args`/`kwargs` are the task's other arguments, checked now as `.send()` checks them.
        After a `group(...)` this is a chord: `task` receives the list of the members' results.
        """
        return Workflow(chained(self._node, next_step(task, args, kwargs)))

    def with_options(
        self,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        **unknown: Never,
    ) -> Workflow[R_co]:
        """A copy whose steps so far are sent with these options; this one is unchanged.

        `countdown`, `eta` and `expires` apply to the workflow's start (its first step, or
        each member of a leading group); `priority` and `queue` to every step it holds. They
        replace what a step set with `task.with_options(...)`: the later call wins.
        """
        refuse_unknown_options("workflow", unknown, "with_options")
        given: dict[str, Any] = {
            "countdown": countdown,
            "eta": eta,
            "expires": expires,
            "priority": priority,
            "queue": queue,
        }
        changes = {k: v for k, v in given.items() if v is not None}
        SendOptions(**changes)  # checks the values (DispatchError) before any step takes them
        return Workflow(with_options(self._node, changes))

    def send(self) -> TaskResult[R_co]:
        """Publish the workflow (every message broker-confirmed). Returns at once.

        The result is the last step's (the members' list for a group); its `get()` raises
        `WorkflowError` naming the step that failed, as soon as one does.
        """
        return publish_workflow(self._node)

    async def send_async(self) -> TaskResult[R_co]:
        """`send()` for async callers: publishes from a worker thread, not on the loop."""
        return await anyio.to_thread.run_sync(self.send)

    def __repr__(self) -> str:
        return f"<hexa workflow {self._node.describe()}>"


@overload
def group(w1: Workflow[T1], /) -> Workflow[list[T1]]: ...
@overload
def group(w1: Workflow[T1], w2: Workflow[T2], /) -> Workflow[list[T1 | T2]]: ...
@overload
def group(
    w1: Workflow[T1], w2: Workflow[T2], w3: Workflow[T3], /
) -> Workflow[list[T1 | T2 | T3]]: ...
@overload
def group(
    w1: Workflow[T1], w2: Workflow[T2], w3: Workflow[T3], w4: Workflow[T4], /
) -> Workflow[list[T1 | T2 | T3 | T4]]: ...
@overload
def group(
    w1: Workflow[T1], w2: Workflow[T2], w3: Workflow[T3], w4: Workflow[T4], w5: Workflow[T5], /
) -> Workflow[list[T1 | T2 | T3 | T4 | T5]]: ...
@overload
def group(
    w1: Workflow[T1],
    w2: Workflow[T2],
    w3: Workflow[T3],
    w4: Workflow[T4],
    w5: Workflow[T5],
    w6: Workflow[T6],
    /,
) -> Workflow[list[T1 | T2 | T3 | T4 | T5 | T6]]: ...
@overload
def group(*workflows: Workflow[T1]) -> Workflow[list[T1]]: ...
def group(*workflows: Workflow[Any]) -> Workflow[list[Any]]:
    """Run `workflows` in parallel; the result is the list of their results, in order.

    A list, never a tuple: results travel as JSON, and Celery hands the next step (a chord
    callback, `group(...).then(task)`) a list. With members of different types the element
    type is their union, e.g. `list[int | str]`.
    """
    for index, workflow in enumerate(workflows, 1):
        if not isinstance(workflow, Workflow):
            raise TypeError(
                f"group(): member {index} is {workflow!r}, not a workflow; "
                "make one with task.s(...)"
            )
    return Workflow(grouped(tuple(w._node for w in workflows)))
