"""The parts of a workflow: steps (one task call), chains and groups, checked when made.

A step's arguments are bound to the task's signature and checked as JSON exactly as
`.send()` checks them, so a workflow that was built can be sent. A step that follows another
gets the previous result as its first argument: its own arguments are bound after a
placeholder for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from hexa._arguments import bind_arguments, check_json, readable
from hexa._options import SendOptions
from hexa._publisher import stores_result
from hexa._spec import TaskSpec

if TYPE_CHECKING:
    from hexa._task import BaseTask

_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.VAR_POSITIONAL,
)
#: How many members of a group `repr()` shows before it only counts them.
_SHOWN_MEMBERS = 3
#: Delivery options `Workflow.with_options` sets on every step; the others only at the start.
_EVERY_STEP = frozenset({"priority", "queue"})


@attrs.frozen(eq=False)
class Step:
    """One task call: the task's name, its arguments and its delivery options."""

    task: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    options: SendOptions
    queue: str | None  # declared with @module_task(queue=...)
    stored: bool  # False for a task annotated `-> None`
    follows: bool = False  # receives the previous step's result first

    def describe(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join((['<previous>'] if self.follows else []) + shown)})"


@attrs.frozen(eq=False)
class Chain:
    """Items run one after the other; each step after the first receives the previous result."""

    items: tuple[Node, ...]

    def describe(self) -> str:
        return " | ".join(item.describe() for item in self.items)


@attrs.frozen(eq=False)
class Group:
    """Members run in parallel; the result is the list of their results, in member order."""

    members: tuple[Node, ...]

    def describe(self) -> str:
        shown = [member.describe() for member in self.members[:_SHOWN_MEMBERS]]
        if len(self.members) > _SHOWN_MEMBERS:
            shown.append(f"... {len(self.members)} members")
        return f"group({', '.join(shown)})"


Node = Step | Chain | Group


def spec_of(task: object, where: str) -> TaskSpec:
    """The `TaskSpec` of a hexa task, or a `TypeError` saying what `where` takes."""
    spec = getattr(task, "spec", None)
    if not isinstance(spec, TaskSpec):
        raise TypeError(
            f"{where} takes a hexa task (a @module_task function, a remote_task, or an entry "
            f"of the stubs `hexa stubs` writes), got {task!r}"
        )
    return spec


def first_step(task: BaseTask[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step:
    """`task.s(*args, **kwargs)`: the arguments checked as `.send()` checks them."""
    spec = task.spec
    bind_arguments(spec.full_name, spec.signature, args, kwargs)
    check_json(spec.full_name, args, kwargs, spec.signature)
    return _step(task, args, kwargs, follows=False)


def next_step(task: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Step:
    """`.then(task, *args, **kwargs)`: the previous result fills the first parameter."""
    spec = spec_of(task, ".then()")
    name, signature = spec.full_name, spec.signature
    params = list(signature.parameters.values())
    if not params or params[0].kind not in _POSITIONAL:
        raise TypeError(
            f".then({name}): the next task receives the previous step's result as its first "
            f"argument, but {name}{readable(signature)} has no positional parameter for it; "
            "give the task a first parameter for that value"
        )
    placeholder = (None,)  # stands for the previous result, which is not known yet
    try:
        bind_arguments(name, signature, placeholder + args, kwargs)
    except TypeError as error:
        raise TypeError(
            f"{error} (in .then(), the previous step's result is the first argument, "
            f"{params[0].name!r}; pass only the arguments after it)"
        ) from None
    check_json(name, placeholder + args, kwargs, signature)
    return _step(task, args, kwargs, follows=True)


def _step(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, follows: bool) -> Step:
    spec: TaskSpec = task.spec
    return Step(
        task=spec.full_name,
        args=tuple(args),
        kwargs=dict(kwargs),
        options=task._options,
        queue=spec.queue,
        stored=stores_result(spec.signature),
        follows=follows,
    )


def chained(first: Node, step: Step) -> Chain:
    """`first` followed by `step` (a chain grows flat, as Celery would unroll it)."""
    items = first.items if isinstance(first, Chain) else (first,)
    return Chain((*items, step))


def grouped(members: tuple[Node, ...]) -> Group:
    """A group of `members`; a bare group as a member is refused (Celery would flatten it)."""
    if not members:
        raise ValueError("group() needs at least one workflow, e.g. group(task.s(1), task.s(2))")
    for index, member in enumerate(members, 1):
        if isinstance(member, Group):
            raise ValueError(
                f"group(): member {index} is itself a group; Celery runs nested groups as one "
                "flat group, so its result would not be a list inside the list. Pass its "
                "members directly, or give it a next step with .then() first"
            )
    return Group(members)


def last_steps(node: Node) -> list[Step]:
    """The steps whose results make the workflow's result (one, or one per group member)."""
    if isinstance(node, Step):
        return [node]
    if isinstance(node, Chain):
        return last_steps(node.items[-1])
    return [step for member in node.members for step in last_steps(member)]


def with_options(node: Node, changes: dict[str, Any], *, leading: bool = True) -> Node:
    """`node` with `changes` set: `priority`/`queue` on every step, `countdown`, `eta` and
    `expires` on the leading steps only (the first step, or each member of a leading group).
    """
    if isinstance(node, Chain):
        items = (
            with_options(item, changes, leading=leading and not i)
            for i, item in enumerate(node.items)
        )
        return Chain(tuple(items))
    if isinstance(node, Group):
        return Group(tuple(with_options(m, changes, leading=leading) for m in node.members))
    own = {k: v for k, v in changes.items() if leading or k in _EVERY_STEP}
    if "countdown" in own or "eta" in own:  # the later call decides when the start is
        own = {"countdown": None, "eta": None, **own}
    return attrs.evolve(node, options=attrs.evolve(node.options, **own))
