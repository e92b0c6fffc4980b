"""The result backend: no password stored, embedded results private, Redis never in the way.

Every backend Celery picks is given `RedactingBackend`: a failure whose message or traceback
holds the broker's or the backend's URL (a task that raised with it) is stored with the
passwords replaced by `**`, so `get()`, `hexa status` and `hexa send --wait` never show them.

Celery's `send_task` subscribes to a task's result channel *before* publishing the task; with
Redis down that subscription raises and the task is never sent, although the worker could
run it, and a client that sends without waiting piles up subscriptions. Here `send_task`
(Celery's canvas, used by workflows, included) does not subscribe at all, as hexa's own
publisher does not: `get()` subscribes when someone waits, then reads the stored result (a
result published before the subscription is not missed), or raises `ResultBackendError`
while Redis stays away. A worker that cannot store a result while Redis is away logs it
(`result.not_stored`) and the task still ends with its `task.*` event.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from celery.backends.filesystem import FilesystemBackend
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError

from hexa._embedded import PrivateFilesystemBackend
from hexa._exceptions import error_text
from hexa._logging import get_logger
from hexa._settings import redact_value

log = get_logger()


class RedactingBackend:
    """Mixin for a Celery result backend: failures are stored without passwords."""

    def prepare_exception(self, exc: BaseException, serializer: Any = None) -> Any:
        return redact_value(super().prepare_exception(exc, serializer))  # type: ignore[misc]

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        return super().store_result(  # type: ignore[misc]
            task_id, result, state, redact_value(traceback), request, **kwargs
        )


class TolerantRedisBackend(RedisBackend):
    """`RedisBackend` that Redis being away costs a result, never a publish or an outcome.

    It subscribes to a result when someone waits, not at publish; a result the worker cannot
    store is logged (`result.not_stored`) instead of failing the task a second time outside
    its body, where it would end with no `task.*` event at all.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing to do at publish: `get()` subscribes on demand."""

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        unreachable: tuple[type[BaseException], ...] = (
            *cast(Any, self).connection_errors,
            BackendStoreError,
        )
        try:
            return super().store_result(task_id, result, state, traceback, request, **kwargs)
        except unreachable as error:
            log.warning(
                "result.not_stored",
                id=task_id,
                state=state,
                backend=self.as_uri(),
                error=error_text(error),
            )
            return result


@functools.cache
def result_backend_class(chosen: type) -> type:
    """The class hexa uses for Celery's choice: redacting, and tolerant when it is Redis."""
    base = {RedisBackend: TolerantRedisBackend, FilesystemBackend: PrivateFilesystemBackend}.get(
        chosen, chosen
    )
    return type(base.__name__, (RedactingBackend, base), {"__module__": __name__})
