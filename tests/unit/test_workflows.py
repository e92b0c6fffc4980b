"""Workflows without a broker: the checks made as steps are added, the messages Celery's
canvas makes of a workflow (ids, options, chain and chord fields), how a failed step is found,
and what a dead letter of a workflow step keeps for its replay."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import pytest
from celery import states

import hexa
from hexa import DispatchError, WorkflowError, WorkflowResult, _hooks, group, registry
from hexa._dead_letters import DeadLetter
from hexa._outbox import _active as _outbox_block
from hexa._spec import TaskSpec
from hexa._task import Task
from hexa._workflows.replay import rerun_ids, workflow_fields
from hexa._workflows.result import WorkflowStep
from hexa.testing import in_process_worker, memory_settings

P = ParamSpec("P")
R = TypeVar("R")


def _add(x: int, y: int) -> int:
    return x + y


def _render(value: int, prefix: str = "") -> str:
    return f"{prefix}{value}"


def _total(values: list[int]) -> int:
    return sum(values)


def _audit(value: object) -> None:
    print(value)


def _keyword_only(*, value: int) -> int:
    return value


def _refuse(value: int) -> int:
    raise ValueError(f"refused {value}")


def _task(func: Callable[P, R], queue: str | None = None) -> Task[P, R]:
    """What @module_task(module="unit_flows") makes, kept out of the registry tests share."""
    return Task(TaskSpec(func=func, module="unit_flows", name=func.__name__[1:], queue=queue))


add = _task(_add)
render = _task(_render, queue="slow")
total = _task(_total)
audit = _task(_audit)
keyword_only = _task(_keyword_only)
refuse = _task(_refuse)
FLOWS = (add, render, total, audit, keyword_only, refuse)

Sent = list[tuple[str, list[Any], dict[str, Any], dict[str, Any]]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    """Every message a workflow's send() publishes, in place of the broker."""
    calls: Sent = []
    app = hexa.build_app(memory_settings())

    def send_confirmed(
        app: Any, name: str, args: list[Any], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        calls.append((name, args, kwargs, options))
        return app.AsyncResult(options["task_id"])

    monkeypatch.setattr("hexa._workflows.canvas.send_confirmed", send_confirmed)
    hexa.use_app(app)
    yield calls
    hexa.use_app(None)
    app.close()


class TestChecksWhenAStepIsAdded:
    def test_s_binds_the_arguments_as_send_does(self) -> None:
        with pytest.raises(TypeError, match=r"unit_flows\.add\(x: int, y: int\).*'y'"):
            add.s(1)  # type: ignore[call-arg]

    def test_s_refuses_what_json_cannot_carry(self) -> None:
        with pytest.raises(DispatchError, match="argument 'x' cannot be sent"):
            add.s(object(), 1)  # type: ignore[arg-type]

    def test_then_binds_the_rest_after_the_previous_result(self) -> None:
        with pytest.raises(TypeError, match=r"missing.*'y'.*the first argument, 'x'"):
            add.s(1, 2).then(add)  # type: ignore[call-arg]

    def test_then_names_an_argument_json_cannot_carry_by_its_parameter(self) -> None:
        with pytest.raises(DispatchError, match="argument 'prefix' cannot be sent"):
            add.s(1, 2).then(render, object())  # type: ignore[arg-type]

    def test_then_refuses_a_task_with_no_parameter_for_the_result(self) -> None:
        with pytest.raises(TypeError, match="has no positional parameter for it"):
            add.s(1, 2).then(keyword_only)  # type: ignore[arg-type]

    def test_then_takes_hexa_tasks_only(self) -> None:
        with pytest.raises(TypeError, match=r"\.then\(\) takes a hexa task"):
            add.s(1, 2).then(len)  # type: ignore[arg-type]

    def test_group_needs_workflows(self) -> None:
        with pytest.raises(ValueError, match="at least one workflow"):
            group()
        with pytest.raises(TypeError, match=r"member 2 is .* not a workflow"):
            group(add.s(1, 2), add)  # type: ignore[call-overload]

    def test_a_bare_group_in_a_group_is_refused_since_celery_would_flatten_it(self) -> None:
        with pytest.raises(ValueError, match="member 1 is itself a group"):
            group(group(add.s(1, 2)), add.s(3, 4))  # types cannot tell: checked at run time
        group(group(add.s(1, 2)).then(total), add.s(3, 4))  # a chord is a workflow: fine

    def test_with_options_refuses_unknown_and_bad_values(self) -> None:
        with pytest.raises(DispatchError, match="retry policy is declared on the task"):
            add.s(1, 2).with_options(retries=3)  # type: ignore[arg-type]
        with pytest.raises(DispatchError, match="priority=10"):
            add.s(1, 2).with_options(priority=10)

    def test_repr_shows_the_steps(self) -> None:
        workflow = group(add.s(1, 2), add.s(3, 4)).then(total).then(render, prefix="=")
        assert repr(workflow) == (
            "<hexa workflow group(unit_flows.add(1, 2), unit_flows.add(3, 4)) | "
            "unit_flows.total(<previous>) | unit_flows.render(<previous>, prefix='=')>"
        )


class TestWhatIsPublished:
    def test_one_step_is_one_message_whose_result_is_the_workflows(self, sent: Sent) -> None:
        result = render.s(7, prefix="n=").send()
        [(name, args, kwargs, options)] = sent
        assert (name, args, kwargs) == ("unit_flows.render", [7], {"prefix": "n="})
        assert (options["task_id"], options["queue"]) == (result.id, "slow")
        assert "chain" not in options

    def test_a_chain_is_one_message_carrying_the_rest(self, sent: Sent) -> None:
        result = add.s(1, 2).then(render, "n=").then(audit).send()
        assert isinstance(result, WorkflowResult)
        first, second, last = result.steps
        [(name, args, _, options)] = sent
        assert (name, args, options["task_id"]) == ("unit_flows.add", [1, 2], first.id)
        rest = [(s["task"], list(s["args"]), s["options"]["task_id"]) for s in options["chain"]]
        assert rest == [("unit_flows.audit", [], last.id), ("unit_flows.render", ["n="], second.id)]
        assert result.id == last.id
        assert (second.after, last.after) == ((first.id,), (first.id, second.id))

    def test_each_step_keeps_its_declared_queue_and_stores_no_result_when_none(
        self, sent: Sent
    ) -> None:
        add.s(1, 2).then(render).then(audit).send()
        chain = {s["task"]: s["options"] for s in sent[0][3]["chain"]}
        assert chain["unit_flows.render"]["queue"] == "slow"
        assert chain["unit_flows.audit"]["ignore_result"] is True
        assert sent[0][3]["ignore_result"] is False

    def test_a_group_is_one_message_per_member_with_one_group_id(self, sent: Sent) -> None:
        result = group(*(add.s(i, i) for i in range(5))).send()
        assert [args for _, args, _, _ in sent] == [[i, i] for i in range(5)]
        assert {options["group_id"] for *_, options in sent} == {result.id}
        assert [options["group_index"] for *_, options in sent] == list(range(5))
        assert "chord" not in sent[0][3]

    def test_a_chord_header_carries_its_callback_and_the_chain_after_it(self, sent: Sent) -> None:
        result = group(add.s(1, 2), add.s(3, 4)).then(total).then(render).send()
        assert isinstance(result, WorkflowResult)
        body = sent[0][3]["chord"]
        assert (body["task"], body["options"]["task_id"]) == (
            "unit_flows.total",
            result.steps[2].id,
        )
        assert [s["task"] for s in body["options"]["chain"]] == ["unit_flows.render"]
        assert result.steps[2].after == (result.steps[0].id, result.steps[1].id)

    def test_with_options_starts_late_only_the_start_and_sets_priority_everywhere(
        self, sent: Sent
    ) -> None:
        workflow = group(add.s(1, 2), add.s(3, 4)).then(total).then(render)
        workflow.with_options(countdown=3, priority=4, queue="q").send()
        header = [options for *_, options in sent]
        assert [(o["countdown"], o["priority"], o["queue"]) for o in header] == [(3, 4, "q")] * 2
        body = header[0]["chord"]["options"]
        assert (body.get("countdown"), body["priority"], body["queue"]) == (None, 4, "q")
        after = body["chain"][0]["options"]
        assert (after.get("countdown"), after["priority"], after["queue"]) == (None, 4, "q")

    def test_the_later_options_win_over_a_steps_own(self, sent: Sent) -> None:
        own = add.with_options(countdown=9, priority=1).s(1, 2)
        own.with_options(countdown=2).send()
        options = sent[0][3]
        assert (options["countdown"], options["priority"]) == (2, 1)

    def test_inside_an_outbox_block_nothing_is_sent_and_the_error_says_why(
        self, sent: Sent
    ) -> None:
        token = _outbox_block.set(object())  # type: ignore[arg-type]  # what outbox() sets
        try:
            with pytest.raises(DispatchError, match=r"cannot be sent inside `with outbox"):
                add.s(1, 2).then(add, 3).send()
        finally:
            _outbox_block.reset(token)
        assert sent == []

    def test_each_message_is_observed_as_a_send_is(
        self, sent: Sent, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[str] = []

        @contextmanager
        def observer(name: str) -> Iterator[None]:
            seen.append(name)
            yield

        monkeypatch.setattr(_hooks, "publish_observers", [observer])
        group(add.s(1, 2), add.s(3, 4)).then(total).send()
        assert seen == ["unit_flows.add", "unit_flows.add"]  # the header; workers send the rest

    def test_every_send_gets_new_task_ids(self, sent: Sent) -> None:
        workflow = add.s(1, 2).then(add, 3)
        assert workflow.send().id != workflow.send().id


ResultWith = Callable[[dict[str, str], list[WorkflowStep]], WorkflowResult[Any]]


@pytest.fixture
def result_with(monkeypatch: pytest.MonkeyPatch) -> ResultWith:
    """A WorkflowResult whose steps are in the given states, read from no backend."""
    found: dict[str, str] = {}
    monkeypatch.setattr(WorkflowResult, "_state", lambda self, task_id: found[task_id])

    def make(states_by_id: dict[str, str], steps: list[WorkflowStep]) -> WorkflowResult[Any]:
        found.update(states_by_id)
        app = hexa.build_app(memory_settings())
        return WorkflowResult(app, steps, [steps[-1].id], name=steps[-1].task)

    return make


class TestTheFailedStepIsNamed:
    steps = [
        WorkflowStep("m.add", "a", "step 1 of 3"),
        WorkflowStep("m.fragile", "f", "step 2 of 3", after=("a",)),
        WorkflowStep("m.double", "d", "step 3 of 3", after=("a", "f")),
    ]

    def test_the_step_that_failed_not_the_one_celery_copied_its_failure_to(
        self, result_with: ResultWith
    ) -> None:
        result = result_with(
            {"a": states.SUCCESS, "f": states.FAILURE, "d": states.FAILURE}, self.steps
        )
        with pytest.raises(WorkflowError, match=r"m\.fragile \(step 2 of 3\)") as caught:
            result._raise_first_failure()
        assert (caught.value.step, caught.value.task_id) == ("m.fragile", "f")

    def test_a_failed_step_still_reading_retry_is_found_through_what_ran_after_it(
        self, result_with: ResultWith
    ) -> None:
        result = result_with(
            {"a": states.SUCCESS, "f": states.RETRY, "d": states.FAILURE}, self.steps
        )
        with pytest.raises(WorkflowError) as caught:
            result._raise_first_failure()
        assert caught.value.step == "m.fragile"

    def test_a_step_that_failed_on_its_own_is_named(self, result_with: ResultWith) -> None:
        result = result_with(
            {"a": states.SUCCESS, "f": states.SUCCESS, "d": states.FAILURE}, self.steps
        )
        with pytest.raises(WorkflowError) as caught:
            result._raise_first_failure()
        assert caught.value.step == "m.double"

    def test_nothing_is_raised_while_steps_run(self, result_with: ResultWith) -> None:
        result = result_with(
            {"a": states.SUCCESS, "f": states.RETRY, "d": states.PENDING}, self.steps
        )
        result._raise_first_failure()

    def test_a_none_step_is_never_blamed_for_staying_pending(self, result_with: ResultWith) -> None:
        steps = [
            WorkflowStep("m.audit", "n", "step 1 of 2", stored=False),
            WorkflowStep("m.next", "x", "step 2 of 2", after=("n",)),
        ]
        result = result_with({"n": states.PENDING, "x": states.FAILURE}, steps)
        with pytest.raises(WorkflowError) as caught:
            result._raise_first_failure()
        assert caught.value.step == "m.next"


class FakeRequest:
    chain = [{"task": "m.double", "args": [], "kwargs": {}, "options": {"task_id": "d"}}]
    chord = {
        "task": "m.total",
        "options": {"task_id": "t", "chain": [{"task": "m.x", "options": {"task_id": "x"}}]},
    }
    group = "g"
    group_index = 1
    callbacks = None
    errbacks = None
    root_id = "r"
    parent_id = "p"
    ignore_result = False


class TestDeadLettersOfWorkflowSteps:
    def test_the_message_keeps_the_steps_place_and_its_replay_forgets_what_runs_again(
        self,
    ) -> None:
        app = hexa.build_app(memory_settings())
        message = app.amqp.as_task_v2("f", "m.fragile", args=(3,), **workflow_fields(FakeRequest))
        assert (message.headers["group"], message.headers["group_index"]) == ("g", 1)
        letter = DeadLetter(
            id="f",
            task="m.fragile",
            reason="r",
            when="w",
            queue="q",
            body=json.dumps(message.body),
            headers=message.headers,
        )
        assert rerun_ids(letter) == ["f", "d", "t", "x"]

    def test_a_plain_dead_letter_reruns_itself_only(self) -> None:
        letter = DeadLetter(id="z", task="m.t", reason="r", when="w", queue="q", body="not json")
        assert rerun_ids(letter) == ["z"]


@pytest.fixture
def worker() -> Iterator[None]:
    """hexa.testing's in-process worker (a real Celery worker thread, in-memory broker)."""
    for task in FLOWS:
        registry.add(task)  # the unit tests' conftest restores the registry afterwards
    with in_process_worker(None, pool="threads", concurrency=4):
        yield


class TestOnTheInProcessWorker:
    def test_chain_group_and_chord_run(self, worker: None) -> None:
        assert add.s(1, 2).then(add, 3).then(render, "=").send().get(timeout=10) == "=6"
        assert group(add.s(1, 2), add.s(3, 4)).send().get(timeout=10) == [3, 7]
        assert group(*(add.s(i, i) for i in range(10))).then(total).send().get(timeout=10) == 90

    def test_a_failing_step_is_named(self, worker: None) -> None:
        with pytest.raises(WorkflowError, match=r"unit_flows\.refuse \(step 2 of 3\)") as caught:
            add.s(1, 2).then(refuse).then(add, 1).send().get(timeout=10)
        assert isinstance(caught.value.__cause__, ValueError)
