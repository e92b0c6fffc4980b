"""CLI errors as one line that names the problem and, where hexa can tell, the fix."""

from __future__ import annotations

from celery.exceptions import TimeoutError as ResultTimeoutError
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from hexa._exceptions import HexaError, error_text
from hexa._settings import Settings


def _where(key: str) -> str:
    """Where the broker or backend is, password masked (never the raw URL)."""
    return Settings.from_env().describe()[key]


def _text(error: BaseException) -> str:
    return str(error).strip().rstrip(".")


def _describe(error: BaseException) -> str:
    if isinstance(error, HexaError | TypeError | ValueError | TimeoutError):
        return str(error)  # hexa's own messages already name the fix
    if isinstance(error, ResultTimeoutError):
        return (
            "no result in time: is a worker consuming the task's queue? "
            "'hexa status TASK_ID' shows the task's state"
        )
    if isinstance(error, OperationalError):
        return (
            f"cannot reach the broker ({_where('broker')}): {_text(error)}; "
            "is it running, and is RABBITMQ_URL right?"
        )
    if isinstance(error, RedisConnectionError):
        return (
            f"cannot reach the result backend ({_where('backend')}): {_text(error)}; "
            "is it running, and is REDIS_URL right?"
        )
    return f"{error_text(error)} (run 'hexa --debug ...' for the traceback)"


def explain(error: BaseException) -> str:
    """`error` for `hexa: error: ...`, on a single line."""
    return " ".join(_describe(error).split())
