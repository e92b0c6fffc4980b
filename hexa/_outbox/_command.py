"""`hexa outbox init|relay|status`, and the relay `hexa worker` runs with `HEXA_OUTBOX_URL`.

Light on purpose: every `hexa` command builds its parser from here, so SQLAlchemy is imported
only when an outbox command runs, or when a worker has `HEXA_OUTBOX_URL` set.
"""

from __future__ import annotations

import argparse
import os
import signal
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


def relay_with_worker(app: Celery) -> None:
    """With `HEXA_OUTBOX_URL` set, the worker runs the relay in a thread while it runs."""
    url = outbox_url()
    if url is None:
        return
    from hexa._outbox._run import RelayThread

    relay = RelayThread(url, app)
    signals.worker_ready.connect(lambda **_: relay.start(), weak=False, dispatch_uid=OUTBOX_URL_ENV)
    signals.worker_shutdown.connect(
        lambda **_: relay.stop(), weak=False, dispatch_uid=OUTBOX_URL_ENV
    )


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
        _run.run_relay(url, current_app(), _stop_on_signals(), args.batch)
    return 0


def _stop_on_signals() -> threading.Event:
    """SIGTERM and Ctrl-C finish the batch in flight, then stop the relay."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


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
    status = actions.add_parser("status", help="count unsent and recently sent messages")
    for action in (init, relay, status):
        action.add_argument("--url", help=f"SQLAlchemy URL (default: {OUTBOX_URL_ENV})")
    outbox.set_defaults(func=cmd_outbox)
