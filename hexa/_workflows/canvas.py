"""A workflow as Celery's canvas, published through hexa's confirmed path.

Celery's `chain`, `group` and `chord` make the messages (the `chain` field, the chord body in
each header message, group ids, the chord size in the result backend), so any Celery worker
runs them and Flower shows them. What publishes is hexa's: each step's signature carries a
stand-in for its task type (Celery's canvas publishes through `sig.type.apply_async`), and
the stand-in sends through `send_confirmed`: publisher confirms, retried with the same task
id until the publish timeout, then `PublishError`; metrics and tracing observe each message
as they observe `.send()`.

Every step gets its task id here, before Celery sees it, so the result knows which id is
which step and can name the one that failed.
"""

from __future__ import annotations

from typing import Any, cast

import attrs
from celery import Celery, chain, group
from celery.canvas import Signature
from celery.result import AsyncResult as CeleryResult
from kombu.utils.uuid import uuid

from hexa._app import current_app
from hexa._delays import check_delay
from hexa._exceptions import DispatchError
from hexa._observe import publishing
from hexa._outbox import active_outbox
from hexa._publisher import send_confirmed
from hexa._settings import Settings
from hexa._workflows.result import WorkflowResult, WorkflowStep
from hexa._workflows.steps import Chain, Group, Node, Step, last_steps

#: Connection options Celery's group passes along; each attempt takes a fresh pooled one.
_CONNECTION_OPTIONS = ("producer", "publisher", "connection")


class UnwatchedResult(CeleryResult[Any]):
    """A step's result as Celery's group keeps it: `then()` does not subscribe to it.

    Celery's group subscribes to every member's result at publish to fulfil a promise no one
    here uses; `WorkflowResult` subscribes when someone waits.
    """

    def then(self, callback: Any, on_error: Any = None, weak: bool = False) -> Any:
        return self.on_ready.then(callback, on_error)


class ConfirmedSender:
    """The task type of a workflow step, as Celery's canvas sees it: it publishes confirmed."""

    def __init__(self, app: Celery, name: str) -> None:
        self.app = app
        self.name = name

    def AsyncResult(self, task_id: str) -> CeleryResult[Any]:  # Celery looks it up by this name
        return UnwatchedResult(task_id, app=self.app)

    def apply_async(
        self, args: Any = None, kwargs: Any = None, **options: Any
    ) -> CeleryResult[Any]:
        for key in _CONNECTION_OPTIONS:
            options.pop(key, None)
        with publishing(self.name):  # metrics and a producer span, as for `.send()`
            return send_confirmed(
                self.app, self.name, list(args or ()), dict(kwargs or {}), options
            )


Built = tuple[Signature[Any], list[str]]  # a node's signature, and its result's step ids


@attrs.define
class _Planner:
    """Builds the canvas, giving each step its task id and its place in the workflow."""

    app: Celery
    steps: list[WorkflowStep] = attrs.field(factory=list)

    def signature(self, node: Node, where: tuple[str, ...], after: tuple[str, ...]) -> Built:
        """Celery's signature for `node`, which runs after the steps `after` (their ids)."""
        if isinstance(node, Step):
            return self._step(node, where, after)
        if isinstance(node, Group):
            return self._group(node, where, after)
        start, count, parts = len(self.steps), len(node.items), []
        for i, item in enumerate(node.items, 1):
            earlier = tuple(step.id for step in self.steps[start:])
            parts.append(self.signature(item, (*where, f"step {i} of {count}"), after + earlier))
        return chain(*(sig for sig, _ in parts), app=self.app), parts[-1][1]

    def _step(self, step: Step, where: tuple[str, ...], after: tuple[str, ...]) -> Built:
        task_id = uuid()
        self.steps.append(WorkflowStep(step.task, task_id, ", ".join(where), after, step.stored))
        options = step.options.for_celery()
        queue = options.get("queue") or step.queue
        if queue:
            options["queue"] = queue
        options.update(task_id=task_id, ignore_result=not step.stored)
        # Celery takes a task type here and publishes through its `apply_async`.
        sender = cast(Any, ConfirmedSender(self.app, step.task))
        return Signature(sender, step.args, dict(step.kwargs), options, app=self.app), [task_id]

    def _group(self, node: Group, where: tuple[str, ...], after: tuple[str, ...]) -> Built:
        count = len(node.members)
        parts = [
            self.signature(member, (*where, f"member {i} of {count}"), after)
            for i, member in enumerate(node.members, 1)
        ]
        finals = [task_id for _, ids in parts for task_id in ids]
        members = [sig for sig, _ in parts]
        return group(members, app=self.app, task_id=uuid()), finals


def publish_workflow(node: Node) -> WorkflowResult[Any]:
    """Publish `node` as Celery's canvas; the result of its last step (or of each member)."""
    _refuse_inside_an_outbox(node)
    app = current_app()
    _check_delays(node, app.hexa_settings)
    planner = _Planner(app)
    canvas, finals = planner.signature(node, (), ())
    canvas.apply_async()
    last = last_steps(node)
    not_stored = [step.task for step in last if not step.stored]
    return WorkflowResult(
        app,
        planner.steps,
        finals,
        group_id=canvas.id if isinstance(node, Group) else None,
        stored=not not_stored,
        name=(not_stored or [last[-1].task])[0],
    )


def _check_delays(node: Node, settings: Settings) -> None:
    """Every step's countdown/eta checked against the broker, before anything is published."""
    if isinstance(node, Step):
        if node.options.countdown or node.options.eta:
            check_delay(node.task, node.options.countdown, node.options.eta, settings)
        return
    for inner in node.items if isinstance(node, Chain) else node.members:
        _check_delays(inner, settings)


def _refuse_inside_an_outbox(node: Node) -> None:
    """`DispatchError` inside `with outbox(session)`, before anything is published."""
    if active_outbox() is not None:
        raise DispatchError(
            f"{node.describe()}: a workflow cannot be sent inside `with outbox(session)`: "
            "the outbox keeps single messages, and a chord also records its size in the "
            "result backend as it is published. Send the workflow after the commit, or send "
            "one task through the outbox and start the workflow from that task"
        )
