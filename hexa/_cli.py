"""The `hexa` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from celery.result import AsyncResult

from hexa._app import HexaCelery, current_app
from hexa._beat import log_beat_schedule, schedule_file
from hexa._cli_errors import TASK_FAILED, explain, task_failed
from hexa._cli_help import polish
from hexa._dead_letters import DeadLetter, DeadLetterStore, dead_queue_name, printable
from hexa._definitions import task_line
from hexa._locator import service_locator
from hexa._logging import configure_logging
from hexa._modules import TASKS_SERVICE, DiscoveryReport, ModuleRegistry, discover_modules
from hexa._outbox._command import add_outbox_commands, relay_with_worker
from hexa._pools import register as register_pools
from hexa._pools.processes import run_processes
from hexa._reload import follow_supervisor, is_reload_child, run_with_reload
from hexa._settings import Settings
from hexa._stubs import DEFAULT_STUBS_PATH, check, render_stubs
from hexa._time_limits import check_time_limits
from hexa._worker import create_celery_worker
from hexa._workflows.replay import prepare_replay
from hexa.metrics import metrics_port, serve_worker_metrics


def discover(loglevel: str = "WARNING") -> tuple[HexaCelery, DiscoveryReport]:
    """What every command starts with: the current directory's `modules`, fresh."""
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)
    configure_logging(level=loglevel)
    ModuleRegistry().clear()
    service_locator.clear()
    report = discover_modules("modules", "module.py")
    return create_celery_worker(), report


def worker_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The `celery worker` arguments for `hexa worker`'s options."""
    argv = ["worker", f"--loglevel={args.loglevel}", "--without-mingle", "--without-gossip"]
    if args.queues:
        argv.append(f"--queues={args.queues}")
    if args.pool:
        argv.append(f"--pool={args.pool}")
    if args.concurrency:
        argv.append(f"--concurrency={args.concurrency}")
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    if args.beat:
        argv += ["--beat", f"--schedule={schedule_file(settings)}"]
    return argv


def cmd_worker(args: argparse.Namespace) -> int:
    if args.reload and not is_reload_child():
        configure_logging(level=args.loglevel)
        return run_with_reload(args.argv)
    follow_supervisor()  # a --reload child stops with its supervisor
    if args.processes > 1:  # each child serves its own metrics (PORT + its index)
        configure_logging(level=args.loglevel)
        port = metrics_port(args.metrics_port)
        return run_processes(args.argv, args.processes, args.hostname, port)
    port = metrics_port(args.metrics_port)
    if port is not None:  # first: prometheus_client must not be imported before this
        serve_worker_metrics(port)
    register_pools()
    app, report = discover(args.loglevel)
    check_time_limits(app, args.pool)  # threads/solo cannot enforce timeout=: refuse, not ignore
    if args.beat:
        log_beat_schedule(report.tasks)
    relay_with_worker(app)  # HEXA_OUTBOX_URL set: the outbox relay runs beside the tasks
    return run_celery(app, worker_argv(args, app.hexa_settings))


def run_celery(app: Any, argv: list[str]) -> int:
    """`app.worker_main(argv)`, keeping the worker's exit code (Celery drops it): a worker
    that stops on an unrecoverable error (a queue of another type, say) exits non-zero."""
    from celery.bin.celery import celery

    celery.params[0].default = app
    try:
        code = celery.main(args=argv, standalone_mode=False)
    finally:
        celery.params[0].default = None
    return code if isinstance(code, int) else 0


def cmd_beat(args: argparse.Namespace) -> int:
    """Celery Beat with the discovered schedule; its state file lives under `.hexa/`."""
    app, report = discover(args.loglevel)
    log_beat_schedule(report.tasks)
    app.start(
        ["beat", f"--loglevel={args.loglevel}", f"--schedule={schedule_file(app.hexa_settings)}"]
    )
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    _, report = discover("ERROR")  # near misses are printed below, not also logged
    for name, path in report.modules.items():
        print(f"module  {name}  {path}")
    for service, module in report.services.items():
        print(f"service {service}  (module {module})")
    for definition in report.tasks:
        print(f"task    {task_line(definition)}")
    for note in report.skipped:
        print(f"skipped {note}")
    for note in report.near_misses:
        print(f"near miss: {note}")
    print(f"total   {len(report.tasks)} tasks")
    return 0


def _parse_arg(text: str) -> Any:
    """A shell argument as JSON when it parses (`123`, `[1]`), else as the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    """`--kwargs`: a JSON object, or a clear error that shows one."""
    try:
        kwargs = json.loads(text) if text else {}
    except ValueError:
        kwargs = None
    if not isinstance(kwargs, dict):
        raise ValueError(f"--kwargs {text!r}: give a JSON object, e.g. '{{\"user_id\": 1}}'")
    return kwargs


def cmd_send(args: argparse.Namespace) -> int:
    kwargs = _parse_kwargs(args.kwargs)
    discover()
    result = service_locator.get_service(TASKS_SERVICE).send_task(
        args.name,
        args=[_parse_arg(a) for a in args.args],
        kwargs=kwargs,
        countdown=args.countdown,
    )
    print(result.id)
    if not args.wait:
        return 0
    outcome = result.get(timeout=args.timeout, propagate=False)
    if isinstance(outcome, BaseException):  # the task ran and raised: not a usage error
        print(task_failed(args.name, outcome, result.celery_result, args.debug), file=sys.stderr)
        return TASK_FAILED
    print(json.dumps(outcome))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    result: AsyncResult[Any] = AsyncResult(args.task_id, app=current_app())
    print(f"{args.task_id}  {result.status}")
    if result.ready():
        outcome = result.get(propagate=False)
        shown = repr(outcome) if isinstance(outcome, BaseException) else json.dumps(outcome)
        print(shown)
    return 0


def _dead_line(letter: DeadLetter) -> str:
    """One line per letter, escaped: a publisher chose the id, task and reason text."""
    reason = " ".join(letter.reason.split())
    return printable(f"{letter.when}  {letter.id}  {letter.task}  {reason}")


def _report_skipped(store: DeadLetterStore) -> None:
    for entry in store.skipped:
        print(f"skipped {entry.what}: {entry.why}", file=sys.stderr)


def cmd_dead(args: argparse.Namespace) -> int:
    """`hexa dead list|replay|purge`: the dead-letter queue of this directory's settings."""
    settings = Settings.from_env()
    settings.make_dirs()
    store = DeadLetterStore(settings)
    if args.action == "list":
        letters = store.letters()
        for letter in letters:
            print(_dead_line(letter))
        print(f"{len(letters)} dead letter(s) in {dead_queue_name(settings)}")
    elif args.action == "purge":
        print(f"purged {store.purge()} dead letter(s) from {dead_queue_name(settings)}")
    else:
        return _replay(store, args.ids, args.all)
    _report_skipped(store)
    return 0


def _replay(store: DeadLetterStore, ids: list[str], everything: bool) -> int:
    if bool(ids) == everything:
        raise ValueError("hexa dead replay: give dead-letter ids, or --all (not both)")
    app = current_app()
    replayed = store.replay(None if everything else ids, prepare=partial(prepare_replay, app))
    for letter in replayed:
        print(printable(f"replayed {letter.id}  {letter.task}  -> {letter.queue}"))
    _report_skipped(store)
    not_replayable = {entry.id for entry in store.skipped if entry.id}
    missing = sorted(set(ids) - {letter.id for letter in replayed} - not_replayable)
    if missing:
        print(
            f"hexa: error: no dead letter with id {', '.join(missing)}; "
            "'hexa dead list' shows them",
            file=sys.stderr,
        )
        return 1
    return 1 if not_replayable else 0


def _add_dead(commands: Any) -> None:
    dead = commands.add_parser("dead", help="list, replay or purge dead letters")
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="show each dead letter: when, id, task, reason")
    replay = actions.add_parser("replay", help="re-publish dead letters to their queues")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead-letter (task) ids")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    actions.add_parser("purge", help="delete every dead letter")
    dead.set_defaults(func=cmd_dead)


def cmd_stubs(args: argparse.Namespace) -> int:
    _, report = discover()
    path = DEFAULT_STUBS_PATH if args.out == "-" else Path(args.out)
    text = render_stubs(report.tasks, out=path)
    if args.out == "-":
        print(text, end="")
        return 0
    if args.check:
        problem = check(path, text)
        if problem:
            print(f"hexa: {path} is {problem}; run: hexa stubs --out {path}", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(report.tasks)} tasks)")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give a whole number >= 1, e.g. --processes 2")
    return value


def _add_worker(commands: Any, name: str, help_text: str) -> None:
    worker = commands.add_parser(name, help=help_text, description=help_text)
    worker.add_argument("--queues", "-Q", help="comma-separated queues to consume")
    worker.add_argument(
        "--pool", "-P", help="prefork (default), asyncio (async tasks on the loop), threads or solo"
    )
    worker.add_argument(
        "--concurrency", "-c", type=int, help="pool size; asyncio: tasks in flight per process"
    )
    worker.add_argument(
        "--processes",
        type=_positive,
        default=1,
        metavar="P",
        help="run P worker processes (one per core), each with its own pool and loop",
    )
    worker.add_argument("--loglevel", "-l", default="INFO", help="default: INFO")
    worker.add_argument("--hostname", "-n", help="node name, e.g. invoicing@%%h")
    worker.add_argument("--beat", "-B", action="store_true", help="also run periodic tasks")
    worker.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT"
    )
    worker.add_argument(
        "--reload", action="store_true", help="restart when a .py file changes (development)"
    )
    worker.set_defaults(func=cmd_worker)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="hexa", description="Run and call the tasks of the current directory's modules."
    )
    root.add_argument(
        "--debug", action="store_true", help="show an error's traceback (put it before COMMAND)"
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_worker(commands, "worker", "run a worker for every task in ./modules")
    _add_worker(commands, "celery-apps", "alias of 'worker' (the seed's name)")

    beat = commands.add_parser("beat", help="run Celery Beat: send periodic tasks when due")
    beat.add_argument("--loglevel", "-l", default="INFO", help="default: INFO")
    beat.set_defaults(func=cmd_beat)

    tasks = commands.add_parser("tasks", help="list what discovery finds, and near misses")
    tasks.set_defaults(func=cmd_tasks)

    send = commands.add_parser("send", help="enqueue a task by name")
    send.add_argument("name", help="task name, e.g. invoicing.emit_invoice")
    send.add_argument("args", nargs="*", metavar="ARG", help="positional arguments")
    send.add_argument("--kwargs", metavar="JSON", help="keyword arguments: '{\"user_id\": 1}'")
    send.add_argument("--countdown", type=float, metavar="SECONDS", help="run no sooner than this")
    send.add_argument("--wait", action="store_true", help="wait for the result and print it")
    send.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="with --wait (default 60)"
    )
    send.set_defaults(func=cmd_send)

    status = commands.add_parser("status", help="show a task's state and result")
    status.add_argument("task_id", help="the id 'hexa send' or .send() gave")
    status.set_defaults(func=cmd_status)
    _add_dead(commands)
    add_outbox_commands(commands)

    stubs = commands.add_parser("stubs", help="write typed clients of every task to one module")
    stubs.add_argument(
        "--out", default=str(DEFAULT_STUBS_PATH), help=f"default: {DEFAULT_STUBS_PATH}; - = stdout"
    )
    stubs.add_argument("--check", action="store_true", help="exit 1 when --out is stale (CI)")
    stubs.set_defaults(func=cmd_stubs)
    return polish(root)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `--reload` restarts with these
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except KeyboardInterrupt:
        print("hexa: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"hexa: error: {explain(error)}", file=sys.stderr)
        return 2
