"""`hexa outbox init|relay|status`, and the relay `hexa worker` runs with `HEXA_OUTBOX_URL`.

Light on purpose: every `hexa` command builds its parser from here, so SQLAlchemy is imported
only when an outbox command runs, or when a worker has `HEXA_OUTBOX_URL` set.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery, signals

from hexa._app import current_app
from hexa._exceptions import ConfigurationError
from hexa._logging import configure_logging
from hexa._settings import read_dotenv

OUTBOX_URL_ENV = "HEXA_OUTBOX_URL"


def outbox_url(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """`HEXA_OUTBOX_URL` from the environment, else `./.env` (as the other settings)."""
    given = os.environ if environ is None else environ
    values = {**read_dotenv((cwd or Path.cwd()) / ".env"), **given}
    return values.get(OUTBOX_URL_ENV) or None


class RelayProcess:
    """`hexa outbox relay` as a child of `hexa worker`, from its ready signal to its shutdown.

    A process, not a thread: a thread in the prefork main process would share its locks with
    the pool's forks and its shutdown. `--parent` makes the relay stop if the worker dies.
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **_: Any) -> None:
        argv = ["-m", "hexa", "outbox", "relay", "--parent", str(os.getpid())]
        self.proc = subprocess.Popen([sys.executable, *argv])

    def stop(self, **_: Any) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # it finishes the batch in flight
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def relay_with_worker(app: Celery) -> None:
    """With `HEXA_OUTBOX_URL` set, the worker runs the relay beside itself while it runs."""
    if outbox_url() is None:
        return
    relay = RelayProcess()
    signals.worker_ready.connect(relay.start, weak=False, dispatch_uid=OUTBOX_URL_ENV)
    signals.worker_shutdown.connect(relay.stop, weak=False, dispatch_uid=OUTBOX_URL_ENV)


def _url(args: argparse.Namespace) -> str:
    url = args.url or outbox_url()
    if not url:
        raise ConfigurationError(
            f"no database for the outbox: set {OUTBOX_URL_ENV} (a SQLAlchemy URL, e.g. "
            "postgresql://user@host/app or sqlite:///.hexa/app.db) or pass --url"
        )
    return str(url)


def cmd_outbox(args: argparse.Namespace) -> int:
    from hexa._outbox import _run

    url = _url(args)
    if args.action == "init":
        print(_run.init_table(url))
    elif args.action == "status":
        print("\n".join(_run.status_lines(url)))
    else:
        configure_logging(level=args.loglevel)
        stop = _stop_on_signals(args.parent)
        _run.run_relay(url, current_app(), stop, args.batch, retry=args.parent is not None)
    return 0


def _stop_on_signals(parent: int | None) -> threading.Event:
    """SIGTERM and Ctrl-C finish the batch in flight, then stop the relay; so does the end of
    the `parent` process (the worker that started it, even if it was killed)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent, stop), daemon=True).start()
    return stop


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def add_outbox_commands(commands: Any) -> None:
    """The `outbox` command and its actions, on `hexa`'s sub-command parser."""
    outbox = commands.add_parser(
        "outbox",
        help="create the outbox table, run the relay, show what is waiting",
        description="The transactional outbox (docs/outbox.md): tasks sent inside "
        "`with outbox(session)` wait in the table hexa_outbox until their transaction "
        f"commits; the relay publishes them. The database is {OUTBOX_URL_ENV} or --url.",
    )
    actions = outbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create the table hexa_outbox (if missing)")
    relay = actions.add_parser("relay", help="publish committed messages until stopped")
    relay.add_argument("--batch", type=int, default=100, help="rows per transaction (100)")
    relay.add_argument("--loglevel", "-l", default="INFO", help="default: INFO")
    relay.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by `hexa worker`
    status = actions.add_parser("status", help="count unsent and recently sent messages")
    for action in (init, relay, status):
        action.add_argument("--url", help=f"SQLAlchemy URL (default: {OUTBOX_URL_ENV})")
    outbox.set_defaults(func=cmd_outbox)
