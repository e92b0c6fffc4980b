"""hexa: decorate plain functions in your modules; one Celery worker runs them all.

Every name below is public API, described in docs/api.md; anything else (the `hexa._*`
modules) is internal and may change.
"""

from hexa._app import HexaCelery, build_app, current_app, use_app
from hexa._batch import batch
from hexa._dead_letters import DeadLetter, DeadLetterStore
from hexa._decorator import module_task
from hexa._definitions import TaskDefinition
from hexa._exceptions import (
    ConfigurationError,
    DeliveryLimitError,
    DiscoveryError,
    DispatchError,
    DuplicateTaskError,
    HexaError,
    InvalidPolicyError,
    InvalidTaskConfigError,
    ModuleImportError,
    PublishError,
    ResultBackendError,
    ServiceNotFoundError,
    TaskTimeoutError,
    UnknownOptionError,
    UnknownTaskError,
    WorkflowError,
)
from hexa._locator import ServiceLocator, service_locator
from hexa._modules import DiscoveryReport, Module, ModuleRegistry, discover_modules
from hexa._outbox import Outbox, outbox
from hexa._registry import registry
from hexa._remote import RemoteTask, remote_task
from hexa._result import ResultNotStoredError, ResultTimeoutError, TaskResult
from hexa._retry import Backoff, FixedDelay, RetryPolicy, celery_retry_options, retry_delay
from hexa._settings import Settings
from hexa._task import AsyncTask, BaseTask, Task
from hexa._tasks_service import TasksService
from hexa._worker import create_celery_worker
from hexa._workflows import Workflow, WorkflowResult, WorkflowStep, group

__all__ = [
    "AsyncTask",
    "Backoff",
    "BaseTask",
    "ConfigurationError",
    "DeadLetter",
    "DeadLetterStore",
    "DeliveryLimitError",
    "DiscoveryError",
    "DiscoveryReport",
    "DispatchError",
    "DuplicateTaskError",
    "FixedDelay",
    "HexaCelery",
    "HexaError",
    "InvalidPolicyError",
    "InvalidTaskConfigError",
    "Module",
    "ModuleImportError",
    "ModuleRegistry",
    "Outbox",
    "PublishError",
    "RemoteTask",
    "ResultBackendError",
    "ResultNotStoredError",
    "ResultTimeoutError",
    "RetryPolicy",
    "ServiceLocator",
    "ServiceNotFoundError",
    "Settings",
    "Task",
    "TaskDefinition",
    "TaskResult",
    "TaskTimeoutError",
    "TasksService",
    "UnknownOptionError",
    "UnknownTaskError",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "WorkflowStep",
    "batch",
    "build_app",
    "celery_retry_options",
    "create_celery_worker",
    "current_app",
    "discover_modules",
    "group",
    "module_task",
    "outbox",
    "registry",
    "remote_task",
    "retry_delay",
    "service_locator",
    "use_app",
]
