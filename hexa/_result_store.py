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

A final state is never replaced by one that says the task is still under way. A retry
without delay runs at once, in another process, and may fail for good before the attempt
that asked for it has stored RETRY; Celery's store (read, then write) lets that late RETRY
replace the FAILURE, and `get()` waits forever. Redis stores with one script (check and
write in one atomic round trip, where Celery takes two), other backends check first.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from celery import states
from celery.backends.filesystem import FilesystemBackend
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError
from redis.commands.core import Script

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


class KeepsFinalState:
    """Mixin for a result backend other than Redis: a final state is checked for first."""

    def _store_result(self, task_id: str, result: Any, state: str, *args: Any, **kw: Any) -> Any:
        if state in states.UNREADY_STATES:
            stored: Any = self._get_task_meta_for(task_id)  # type: ignore[attr-defined]
            if stored["status"] in states.READY_STATES:
                return result
        return super()._store_result(task_id, result, state, *args, **kw)  # type: ignore[misc]


#: Celery's rule (a SUCCESS is never replaced) plus hexa's (no state of a task under way
#: replaces a final one), then Celery's write: SET (SETEX with a lifetime) and PUBLISH.
_STORE_SCRIPT = Script(
    None,  # type: ignore[arg-type]  # a bytes script needs no client to hash
    b"""
local stored = redis.call('GET', KEYS[1])
if stored then
  local ok, meta = pcall(cjson.decode, stored)
  local final = {SUCCESS = true, FAILURE = true, REVOKED = true}
  if ok and type(meta) == 'table' then
    if meta.status == 'SUCCESS' or (final[meta.status] and not final[ARGV[2]]) then
      return 0
    end
  end
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
""",
)


class TolerantRedisBackend(RedisBackend):
    """`RedisBackend` that Redis being away costs a result, never a publish or an outcome.

    It subscribes to a result when someone waits, not at publish; a result the worker cannot
    store is logged (`result.not_stored`) instead of failing the task a second time outside
    its body, where it would end with no `task.*` event at all.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Nothing to do at publish: `get()` subscribes on demand."""

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Celery's store in one atomic script; a final state is kept (see the module)."""
        backend: Any = self
        meta = backend._get_result_meta(result, state, traceback, request)
        meta["task_id"] = task_id
        value = backend.encode(meta)
        if isinstance(value, str) and len(value) > backend._MAX_STR_VALUE_SIZE:
            too_large: Any = BackendStoreError  # celery-types omits its keyword arguments
            raise too_large("value too large for Redis", state=state, task_id=task_id)
        expires = backend.failure_expires if state == states.FAILURE else backend.expires
        key = backend.get_key_for_task(task_id)
        backend.ensure(self._run_store, (key, value, state, int(expires or 0)))
        return result

    def _run_store(self, key: bytes, value: str | bytes, state: str, expires: int) -> None:
        _STORE_SCRIPT(keys=[key], args=[value, state, expires], client=cast(Any, self).client)

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
    """The class hexa uses for Celery's choice: redacting, keeping final states, and
    tolerant when it is Redis."""
    here = {"__module__": __name__}
    if chosen is RedisBackend:
        return type(TolerantRedisBackend.__name__, (RedactingBackend, TolerantRedisBackend), here)
    base: type = PrivateFilesystemBackend if chosen is FilesystemBackend else chosen
    return type(base.__name__, (RedactingBackend, KeepsFinalState, base), here)
