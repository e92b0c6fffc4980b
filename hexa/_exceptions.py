"""Public exceptions. Every error hexa raises on purpose derives from `HexaError`.

HexaError
├── ConfigurationError      bad settings or a bad declaration (names the fix)
│   ├── InvalidPolicyError  a retry policy that cannot work as written
│   └── InvalidTaskConfigError  unknown or misplaced option in a `*_tasks` dict
├── DiscoveryError          modules/ could not be turned into tasks
│   ├── ModuleImportError   a module.py failed to import (carries its path)
│   └── DuplicateTaskError  two sources claim one task name
├── ServiceNotFoundError    service_locator has no such service (also a KeyError)
├── UnknownTaskError        a task name nobody declared (also a KeyError, and Celery's
│                           NotRegistered for clients that catch that)
├── DispatchError           a message was refused before publishing (also a ValueError)
│   └── UnknownOptionError  send_task()/with_options() got an option they do not take
│                           (also a TypeError, as for any unexpected keyword argument)
├── PublishError            the broker did not confirm a message in time (also a ConnectionError)
├── ResultBackendError      the result store cannot be read (also a ConnectionError)
├── WorkflowError           a workflow step failed for good (names the step)
└── TaskTimeoutError        an async task ran past its `timeout=` (also a TimeoutError)
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches

from celery.exceptions import NotRegistered


class HexaError(Exception):
    """Root of every error hexa raises on purpose."""


class ConfigurationError(HexaError):
    """A setting or a declaration that cannot work as written."""


class InvalidPolicyError(ConfigurationError, ValueError):
    """A retry policy with values that cannot work."""


class InvalidTaskConfigError(ConfigurationError):
    """A `*_tasks` entry with an unknown or misplaced option."""


class DiscoveryError(HexaError):
    """The `modules` package could not be turned into tasks."""


class ModuleImportError(DiscoveryError):
    """A `module.py` raised while being imported; the message names the file and line that failed.

    `path` is the `module.py`; `origin` is `"file, line N"` where the error was raised, which
    may be a file `module.py` imports (a task file), or None when it cannot be told.
    """

    def __init__(self, path: str, error: BaseException, origin: str | None = None) -> None:
        where = path if origin is None else origin
        if origin is not None and not origin.startswith(f"{path}, "):
            where += f" (imported by {path})"
        super().__init__(f"could not import {where}: {error_text(error)}")
        self.path = path
        self.origin = origin


class DuplicateTaskError(DiscoveryError):
    """Two sources register the same task name."""


class ServiceNotFoundError(HexaError, KeyError):
    """The service locator holds no service under that name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class UnknownTaskError(HexaError, NotRegistered):
    """A task name that no module declares; the message names the closest names or the fix.

    A `NotRegistered` too, so code that catches Celery's error keeps working, without its
    "never registered, please make sure it's imported" (the module may well be imported).
    """

    def __str__(self) -> str:
        return str(self.args[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class DispatchError(HexaError, ValueError):
    """A message refused before anything was published."""


class UnknownOptionError(DispatchError, TypeError):
    """`send_task()` or `.with_options()` got an option it does not take (`retries=`, a typo).

    A `TypeError`, as Python raises for any unexpected keyword argument, and a
    `DispatchError`, as every call refused before publishing.
    """


class PublishError(HexaError, ConnectionError):
    """The broker did not take (confirm) a message before the publish timeout."""


class DeliveryLimitError(HexaError):
    """A message was delivered `HEXA_DELIVERY_LIMIT` times without finishing (its worker
    process died each time) and was dead-lettered; `.get()` on its result raises this."""


class ResultBackendError(HexaError, ConnectionError):
    """The result backend could not be reached to read a task's outcome."""


class WorkflowError(HexaError):
    """A step of a workflow failed for good; `.step`, `.task_id`, and its error as `__cause__`."""

    def __init__(self, message: str, *, step: str, task_id: str) -> None:
        super().__init__(message)
        self.step = step
        self.task_id = task_id


class TaskTimeoutError(HexaError, TimeoutError):
    """An async task ran longer than its declared `timeout=`."""


def error_text(error: BaseException) -> str:
    """`ValueError: bad value`: how hexa names an exception in logs, dead letters and errors."""
    return f"{type(error).__name__}: {error}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest candidate, or ''."""
    close = get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
