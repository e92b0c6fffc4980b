"""`WorkflowResult`: the `TaskResult` of a workflow's last step, watching the steps before it.

When a step fails for good, the steps after it never run (Celery marks the rest of a chain
failed with the same error; a chord's callback fails once every header task is done). `get()`
does not wait for that: between short waits on the last step it reads the state of every step
not yet known to have succeeded, and raises `WorkflowError` naming the first one that failed,
with that step's own error as the cause.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar, cast

import attrs
from celery import Celery, states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult, GroupResult

from hexa._exceptions import WorkflowError, error_text
from hexa._result import ResultNotStoredError, TaskResult, backend_error

R = TypeVar("R")

#: Longest single wait on the last step before the other steps are looked at again.
_CHECK_EVERY = 1.0


@attrs.frozen
class WorkflowStep:
    """One step as published: its task, its task id, and where it sits in the workflow."""

    task: str
    id: str
    where: str  # "step 2 of 3", "step 1 of 2, member 4 of 50"; "" for a one-step workflow
    after: tuple[str, ...] = ()  # ids of the steps it runs after (its result's ancestors)
    stored: bool = True  # False for a `-> None` step: it stays PENDING after success

    @property
    def label(self) -> str:
        return f"{self.task} ({self.where})" if self.where else self.task


class WorkflowResult(TaskResult[R]):
    """The outcome of a workflow: its last step's value, or the list of its members' values."""

    __slots__ = ("_finals", "_is_group", "_pending", "_steps")

    def __init__(
        self,
        app: Celery,
        steps: list[WorkflowStep],
        finals: list[str],
        *,
        group_id: str | None = None,
        stored: bool = True,
        name: str,
    ) -> None:
        super().__init__(group_id or finals[-1], app, task_name=name, stored=stored)
        self._steps = steps
        self._finals = finals
        self._is_group = group_id is not None
        self._pending = list(steps)  # steps not yet seen succeed

    @property
    def steps(self) -> list[WorkflowStep]:
        """Every step with its task id, in the order they can run."""
        return list(self._steps)

    @property
    def celery_result(self) -> AsyncResult[Any]:
        """The last step's `AsyncResult`; for a group, Celery's `GroupResult` of its members."""
        if not self._is_group:
            return super().celery_result
        app = cast(Celery, self._app)
        members = [app.AsyncResult(task_id) for task_id in self._finals]
        return cast(AsyncResult[Any], GroupResult(self.id, members, app=app))

    @property
    def status(self) -> str:
        """Celery's state of the last step; for a group, FAILURE when a member failed,
        SUCCESS when all succeeded, else PENDING. FAILURE too, before the last step knows
        it, once any step failed for good: what `get()` raises for at that moment (Celery
        copies the failure onto the rest of the workflow a little later)."""
        if not self._is_group:
            last = super().status
            if last in states.READY_STATES or not self._any_step_failed():
                return last
            return states.FAILURE
        found = {self._state(task_id) for task_id in self._finals}
        if found & states.PROPAGATE_STATES or self._any_step_failed():
            return states.FAILURE
        return states.SUCCESS if found == {states.SUCCESS} else states.PENDING

    def _any_step_failed(self) -> bool:
        return any(self._state(step.id) in states.PROPAGATE_STATES for step in self._steps)

    def ready(self) -> bool:
        return all(self._state(task_id) in states.READY_STATES for task_id in self._finals)

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> R:
        """The last step's value (a list for a group); `WorkflowError` names a failed step.

        Raises `ResultNotStoredError` at once when the last step is annotated `-> None`.
        With `propagate=False` a failure is returned (the `WorkflowError`), not raised.
        """
        if not self.stored:
            raise self._not_stored()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            values = [self._wait(task_id, deadline) for task_id in self._finals]
        except WorkflowError as error:
            if propagate:
                raise
            return cast(R, error)
        return cast(R, values if self._is_group else values[0])

    def _wait(self, task_id: str, deadline: float | None) -> Any:
        """One final step's value, looking at the other steps between short waits."""
        result = self._result(task_id)
        while True:
            self._raise_first_failure()
            left = _CHECK_EVERY if deadline is None else deadline - time.monotonic()
            try:
                value = result.get(timeout=max(0.01, min(left, _CHECK_EVERY)), propagate=False)
            except CeleryTimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            except Exception as error:  # propagate=False: only reading the backend raises
                raise backend_error(result, error) from None
            if result.failed():
                self._raise_first_failure()
            return value

    def _raise_first_failure(self) -> None:
        """Raise `WorkflowError` for the step that failed, once one is seen failed for good."""
        still: list[WorkflowStep] = []
        for step in self._pending:
            state = self._state(step.id)
            if state in states.PROPAGATE_STATES:
                raise self._failure(self._culprit(step))
            if state != states.SUCCESS:
                still.append(step)
        self._pending = still

    def _culprit(self, failed: WorkflowStep) -> WorkflowStep:
        """The step whose failure `failed` shows: itself, or the step it ran after that failed.

        Celery copies a step's failure onto the rest of its chain and fails a chord's callback
        for a header task's failure. The step that failed first may read RETRY: with a retry
        delay of 0, Celery can store a retry's RETRY after the retried run's FAILURE.
        """
        earlier = [step for step in self._steps if step.id in set(failed.after)]
        found = [(step, self._state(step.id)) for step in earlier]
        for step, state in found:
            if state in states.PROPAGATE_STATES:
                return step
        for step, state in found:
            if step.stored and state != states.SUCCESS:
                return step
        return failed

    def _failure(self, step: WorkflowStep) -> WorkflowError:
        error = self._result(step.id).result
        cause = error if isinstance(error, BaseException) else None
        described = error_text(error) if cause else repr(error)
        failure = WorkflowError(
            f"workflow step {step.label} failed (task id {step.id}): {described}. A hexa "
            f"task that exhausted its retries is in the dead-letter queue: `hexa dead replay "
            f"{step.id}` runs it again and the rest of the workflow after it",
            step=step.task,
            task_id=step.id,
        )
        failure.__cause__ = cause
        return failure

    def _not_stored(self) -> ResultNotStoredError:
        return ResultNotStoredError(
            f"this workflow ends in {self._task_name}, annotated `-> None`: hexa publishes it "
            "without storing a result, so there is nothing to wait for; declare a return type "
            "(e.g. `-> bool`) and return a value to be able to wait for it"
        )

    def _result(self, task_id: str) -> AsyncResult[Any]:
        return cast(Celery, self._app).AsyncResult(task_id)

    def _state(self, task_id: str) -> str:
        result = self._result(task_id)
        try:
            return cast(str, result.state)
        except Exception as error:
            raise backend_error(result, error) from None
