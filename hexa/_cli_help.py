"""The words of `hexa --help` and of every command's `--help`: what it does, and examples."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

ROOT_DESCRIPTION = """\
Run and call the tasks of the current directory's modules: every modules/<name>/module.py
is discovered, and its *_tasks services become Celery tasks named <module>.<task>."""

ROOT_EPILOG = """\
Run hexa in your project's root, the folder that holds modules/.

environment (also read from ./.env; the environment wins):
  RABBITMQ_URL          broker, e.g. amqp://user:pass@host:5672//; unset: embedded in .hexa/
  REDIS_URL             result backend, e.g. redis://host:6379/0; unset: embedded in .hexa/
                        (the project's .hexa/: in the folder, upwards, holding modules/)
  HEXA_DEFAULT_QUEUE    queue of tasks declared without queue= (default: celery)
  HEXA_LOG_FORMAT       console or json (default: console on a terminal, else json)
  HEXA_PUBLISH_TIMEOUT  seconds send() waits for the broker to confirm (default: 20)
  HEXA_MAX_MESSAGE_SIZE largest arguments send() publishes, in bytes (default: 64 MiB)
  HEXA_SHUTDOWN_GRACE   --pool asyncio: seconds a warm shutdown waits (default: 20)
  HEXA_PREFETCH_MULTIPLIER  messages a worker process reserves (default: 4; 1: long tasks)
  HEXA_OUTBOX_URL       database whose outbox 'hexa worker' relays (docs/outbox.md)

examples:
  hexa worker --pool threads --concurrency 32
  hexa tasks
  hexa send notifications.send_notification 123 Hello! --wait
  hexa status 4f0c2a9e-6d0b-4c5e-9d7a-0e1f2a3b4c5d

Celery's own tools: celery -A hexa.celery_app inspect registered (see docs/celery-tools.md)."""

#: name -> (description, epilog). Applied only to the commands the parser has.
COMMANDS: dict[str, tuple[str, str]] = {
    "worker": (
        "Discover ./modules and run one Celery worker for all of its tasks. Messages are "
        "acknowledged after the task ran (at-least-once): write tasks to be idempotent.",
        "examples:\n  hexa worker\n  hexa worker --pool threads --concurrency 32   "
        "# async-heavy modules\n  hexa worker --queues invoicing,celery --hostname inv@%h",
    ),
    "celery-apps": ("The seed's name for 'hexa worker'; same options.", ""),
    "beat": (
        "Run Celery Beat: send the tasks declared with @module_task(schedule=...) when due. "
        "Run one beat per deployment; workers run the tasks.",
        "example:\n  hexa beat",
    ),
    "tasks": (
        "List what discovery finds: modules, task services, one line per task ([async] and "
        "the retry policy), folders skipped and why, and near misses such as a service "
        "named 'invoicing_task' that would not be discovered.",
        "example:\n  hexa tasks",
    ),
    "send": (
        "Enqueue a task by name through tasks_service: the name, the arguments and the "
        "options are checked before anything is published. Prints the task id.",
        "arguments are JSON when they parse (123, [1, 2], null), else plain strings.\n\n"
        "examples:\n  hexa send invoicing.emit_invoice 123 --wait\n"
        "  hexa send notifications.send_notification 123 Hello! --countdown 30\n"
        "  hexa send yiqi_erp.create_invoice_from_purchase_invoice "
        "--kwargs '{\"purchase_invoice_id\": 7}'",
    ),
    "status": (
        "Show a task's state (PENDING, STARTED, RETRY, SUCCESS or FAILURE) and, once it "
        "finished, its result or error, read from the result backend. An unknown id shows "
        "PENDING.",
        "example:\n  hexa status 4f0c2a9e-6d0b-4c5e-9d7a-0e1f2a3b4c5d",
    ),
    "stubs": (
        "Write one dependency-free Python module of typed clients, a namespace per module, "
        "so a process that must not import the implementations can still call "
        "invoicing.emit_invoice.send(123) with types. --check exits non-zero when it is missing or "
        "stale.",
        "examples:\n  hexa stubs --out tasks_client.py\n  hexa stubs --out tasks_client.py --check",
    ),
    "dead": (
        "The dead-letter queue: messages for unknown tasks, undecodable messages and tasks "
        "that exhausted their retries end there instead of being dropped.",
        "examples:\n  hexa dead list\n  hexa dead replay --all\n  hexa dead purge",
    ),
}


#: Option value names shown in help (argparse would print the upper-cased option name).
METAVARS = {
    "queues": "Q1,Q2",
    "pool": "POOL",
    "concurrency": "N",
    "loglevel": "LEVEL",
    "hostname": "NAME",
    "out": "FILE.py",
}


def _tidy_options(command: argparse.ArgumentParser) -> None:
    """Short option first (`-Q, --queues Q1,Q2`) and readable value names."""
    for action in command._actions:
        if not action.option_strings:
            continue
        action.option_strings = sorted(action.option_strings, key=len)
        if action.dest in METAVARS and action.nargs != 0:
            action.metavar = METAVARS[action.dest]


def _subparsers(root: argparse.ArgumentParser) -> dict[str, Any]:
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def polish(root: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give the root and each known command its description, examples and layout."""
    root.description, root.epilog = ROOT_DESCRIPTION, ROOT_EPILOG
    root.formatter_class = argparse.RawDescriptionHelpFormatter
    for name, command in _subparsers(root).items():
        description, epilog = COMMANDS.get(name, (command.description, command.epilog))
        command.description = textwrap.fill(description, 88) if description else None
        command.epilog = epilog or None
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        _tidy_options(command)
    return root
