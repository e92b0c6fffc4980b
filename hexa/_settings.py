"""Where the broker and the result store are: the environment, a `.env` file, or embedded."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import attrs
from kombu.utils.url import maybe_sanitize_url

from hexa._exceptions import ConfigurationError

#: The seed's variable names; code outside hexa relies on them.
BROKER_ENV = "RABBITMQ_URL"
BACKEND_ENV = "REDIS_URL"
QUEUE_ENV = "HEXA_DEFAULT_QUEUE"
HOME_DIR = ".hexa"
PUBLISH_TIMEOUT_ENV = "HEXA_PUBLISH_TIMEOUT"
PREFETCH_ENV = "HEXA_PREFETCH_MULTIPLIER"
#: Messages each worker process reserves (Celery's own default); unacknowledged until run.
DEFAULT_PREFETCH = 4
#: Seconds `send()` keeps retrying an unconfirmed publish before it raises `PublishError`.
DEFAULT_PUBLISH_TIMEOUT = 20.0
MAX_MESSAGE_SIZE_ENV = "HEXA_MAX_MESSAGE_SIZE"
#: Largest message body (bytes) `send()` publishes and a worker inflates: below RabbitMQ's
#: default `max_message_size` (128 MiB) with room for a dead letter's base64 copy (4/3).
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
HEARTBEAT_ENV = "HEXA_HEARTBEAT"
#: Seconds between AMQP heartbeats on worker and publisher connections: a peer that stays
#: silent for two of them is taken as gone, so a cut-off worker is noticed (and its messages
#: redelivered by the broker) in 10-20 s, not RabbitMQ's 60 s default (or never: Celery's
#: clients send none). Below 2 s a busy process would miss its own beats.
DEFAULT_HEARTBEAT = 10
MIN_HEARTBEAT = 2
QUEUE_TYPE_ENV = "HEXA_QUEUE_TYPE"
#: RabbitMQ's two durable queue types; quorum queues are replicated across a cluster's nodes.
QUEUE_TYPES = ("classic", "quorum")
DELIVERY_LIMIT_ENV = "HEXA_DELIVERY_LIMIT"
#: Deliveries a message gets without finishing (its worker process died each time) before it
#: is dead-lettered: enough to ride out a worker restart or two, few enough that a message
#: that kills its worker stops doing so within seconds.
DEFAULT_DELIVERY_LIMIT = 5
#: Socket timeouts on AMQP connections, so a broker that stops answering (a blocked
#: connection, a half-open socket) raises instead of hanging the caller forever.
SOCKET_TIMEOUT = 5


_BROKER_DIRS = ("data_folder_in", "control_folder")
#: URL schemes of RabbitMQ (AMQP 0-9-1) brokers.
_AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (comments, blank lines, `export` and quotes allowed)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def find_home(cwd: Path) -> Path:
    """The project's `.hexa` folder, looked for from `cwd` upwards as git looks for `.git`.

    The nearest folder that has a `.hexa`, or that holds the `modules` package (the project's
    root, where `hexa worker` runs), gives it; nothing above a project's root is looked at.
    Outside any project: `cwd/.hexa`. So a client started in `modules/orders/` or `scripts/`
    uses the embedded broker of the worker started at the root.
    """
    for folder in (cwd, *cwd.parents):
        if (folder / HOME_DIR).is_dir() or (folder / "modules" / "__init__.py").is_file():
            return folder / HOME_DIR
    return cwd / HOME_DIR


#: Where one URL of a list ends: a `,` or kombu's `;`, then the next URL's `scheme://`.
#: (A comma inside one URL, in its query say, is not followed by a scheme.)
_URL_BREAK = re.compile(r"\s*[;,]\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(text: str) -> list[str]:
    """The URLs of a broker list: `amqp://h1,amqp://h2` or kombu's `amqp://h1;amqp://h2`."""
    return [url for url in (part.strip() for part in _URL_BREAK.split(text.strip())) if url]


def broker_urls(text: str) -> str:
    """`RABBITMQ_URL` checked URL by URL, as kombu's failover form (`;`-joined) Celery takes.

    Each must be `scheme://...` (AMQP ones with a host); the error names the bad one.
    """
    urls = split_urls(text)
    for position, url in enumerate(urls, 1):
        where = f"URL {position} of {len(urls)}, " if len(urls) > 1 else ""
        problem = _url_problem(url)
        if problem:
            raise ConfigurationError(
                f"{BROKER_ENV}: {mask(url)!r} ({where}{problem}); give "
                "amqp://user:password@host:5672//, or several, each with its scheme, "
                "separated by commas: amqp://u:p@h1:5672//,amqp://u:p@h2:5672//"
            )
    return ";".join(urls)


def _url_problem(url: str) -> str | None:
    """What is wrong with one broker URL, or None."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        return f"not a URL: {error}"
    if not parsed.scheme or "://" not in url:
        return "no scheme://"
    if parsed.scheme in _AMQP_SCHEMES:
        if not parsed.hostname:
            return "no host"
        if any(mark in parsed.netloc for mark in ",; "):
            return "one host per URL"
        if "," in parsed.path:  # `amqp://h1//,h2:5672`: the second broker lost its scheme
            return "a comma in the virtual host: each broker of a list needs its amqp://"
    return None


def mask(url: str) -> str:
    """The URL (or each URL of a list) with its password replaced by `**`, safe to print."""
    urls = split_urls(url)
    if len(urls) > 1:
        return ";".join(_mask_one(one) for one in urls)
    return _mask_one(url)


def _mask_one(url: str) -> str:
    try:
        return str(maybe_sanitize_url(url))
    except ValueError:  # not parseable (a bad port, say): hide what sits where a password would
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1**@", url)


@attrs.frozen
class Settings:
    """Resolved connection settings. Build one with `Settings.from_env()`."""

    broker_url: str
    result_backend: str
    home: Path
    default_queue: str = "celery"
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    prefetch_multiplier: int = DEFAULT_PREFETCH
    heartbeat: int = DEFAULT_HEARTBEAT
    queue_type: str = "classic"
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_url_list(self) -> list[str]:
        """Each broker of `broker_url` (one, or a cluster's nodes in failover order)."""
        return split_urls(self.broker_url)

    @property
    def delays_on_broker(self) -> bool:
        """Whether delayed messages wait on the broker (RabbitMQ: see `hexa._delays`).

        Elsewhere (the embedded broker, any other transport) a worker holds a delayed
        message until it is due, so delays are limited (`hexa._delays.MAX_HELD_DELAY`).
        """
        first = self.broker_url_list[0] if self.broker_url_list else ""
        return first.split("://")[0].lower() in _AMQP_SCHEMES

    @property
    def embedded_backend(self) -> bool:
        return self.result_backend.startswith("file://")

    @property
    def broker_transport_options(self) -> dict[str, object]:
        if not self.embedded_broker:
            # Publisher confirms: publish() returns only once RabbitMQ has the message.
            return {
                "confirm_publish": True,
                "read_timeout": SOCKET_TIMEOUT,
                "write_timeout": SOCKET_TIMEOUT,
            }
        queue_dir = self.home / "broker" / "queue"
        return {
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(self.home / "broker" / "control"),
            "polling_interval": 0.1,
        }

    def describe(self) -> dict[str, str]:
        """Broker and backend for logs and CLI output, passwords masked."""
        return {
            "broker": "embedded " + str(self.home / "broker")
            if self.embedded_broker
            else mask(self.broker_url),
            "backend": "embedded " + str(self.home / "results")
            if self.embedded_backend
            else mask(self.result_backend),
            "queue": self.default_queue,
            "queue_type": self.queue_type,
        }

    def secrets(self) -> list[str]:
        """The passwords in the broker and backend URLs: never to be printed or stored."""
        urls = [*split_urls(self.broker_url), *split_urls(self.result_backend)]
        found = [_password(url) for url in urls]
        return sorted({form for pw in found if pw for form in (pw, unquote(pw))}, key=len)[::-1]

    def __attrs_post_init__(self) -> None:
        _remember(self.secrets())  # so logs and stored failures can be redacted anywhere

    @property
    def broker_transport(self) -> str | None:
        """The kombu transport class for the broker URL: hexa's private one when embedded."""
        return "hexa._embedded:Transport" if self.embedded_broker else None

    def make_dirs(self) -> None:
        """Create the embedded broker's and result store's folders when they are in use.

        `.hexa/` and everything in it are private to the user (0700), existing ones included.
        """
        from hexa._embedded import private_dir  # kombu's file transport: embedded use only

        folders = []
        if self.embedded_broker:
            folders += [Path(str(self.broker_transport_options[key])) for key in _BROKER_DIRS]
        if self.embedded_backend:
            folders.append(self.home / "results")
        for folder in folders:
            private_dir(folder, root=self.home)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Settings:
        """Read `RABBITMQ_URL`/`REDIS_URL` from the environment, then `./.env`, then the
        project root's `.env`.

        Unset (or empty) means the embedded default under the project's `.hexa/` (see
        `find_home`), so a worker and a client started in the same project find each other
        with no server at all.
        """
        cwd = (cwd or Path.cwd()).resolve()
        home = find_home(cwd)
        dotenv = {**read_dotenv(home.parent / ".env"), **read_dotenv(cwd / ".env")}
        values = {**dotenv, **(os.environ if environ is None else environ)}
        return cls(
            # "localhost" only silences kombu's "no hostname" warning; the transport ignores it.
            broker_url=broker_urls(values.get(BROKER_ENV) or "filesystem://localhost/"),
            result_backend=values.get(BACKEND_ENV) or (home / "results").as_uri(),
            home=home,
            default_queue=values.get(QUEUE_ENV) or "celery",
            publish_timeout=float(values.get(PUBLISH_TIMEOUT_ENV) or DEFAULT_PUBLISH_TIMEOUT),
            max_message_size=_size(values.get(MAX_MESSAGE_SIZE_ENV)),
            prefetch_multiplier=_prefetch(values.get(PREFETCH_ENV)),
            heartbeat=_heartbeat(values.get(HEARTBEAT_ENV)),
            queue_type=_queue_type(values.get(QUEUE_TYPE_ENV)),
            delivery_limit=_delivery_limit(values.get(DELIVERY_LIMIT_ENV)),
        )


def _size(text: str | None) -> int:
    """`HEXA_MAX_MESSAGE_SIZE`: a whole number of bytes, or the default when unset."""
    if not text:
        return DEFAULT_MAX_MESSAGE_SIZE
    if not text.strip().isdigit() or int(text) <= 0:
        raise ConfigurationError(
            f"{MAX_MESSAGE_SIZE_ENV}={text!r}: give a whole number of bytes, "
            f"e.g. {DEFAULT_MAX_MESSAGE_SIZE} (64 MiB, the default)"
        )
    return int(text)


def _prefetch(value: str | None) -> int:
    """`HEXA_PREFETCH_MULTIPLIER`: a whole number from 1 (long tasks) up."""
    if not value:
        return DEFAULT_PREFETCH
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"{PREFETCH_ENV}={value!r}: use a whole number of messages per worker process, "
            f"1 for tasks that run for minutes (default {DEFAULT_PREFETCH})"
        )
    return int(value)


def _heartbeat(text: str | None) -> int:
    """`HEXA_HEARTBEAT`: whole seconds from 2 up (AMQP negotiates whole seconds); 0: off."""
    if not text:
        return DEFAULT_HEARTBEAT
    value = text.strip()
    if not value.isdigit() or not (int(value) == 0 or MIN_HEARTBEAT <= int(value) <= 3600):
        raise ConfigurationError(
            f"{HEARTBEAT_ENV}={text!r}: give whole seconds between heartbeats, from "
            f"{MIN_HEARTBEAT} to 3600 (default {DEFAULT_HEARTBEAT}; 0 turns them off)"
        )
    return int(value)


def _queue_type(value: str | None) -> str:
    """`HEXA_QUEUE_TYPE`: classic (the default) or quorum."""
    if not value or not value.strip():
        return "classic"
    if value.strip().lower() not in QUEUE_TYPES:
        raise ConfigurationError(
            f"{QUEUE_TYPE_ENV}={value!r}: use 'classic' (the default, one node) or 'quorum' "
            "(replicated across a RabbitMQ cluster)"
        )
    return value.strip().lower()


def _delivery_limit(value: str | None) -> int:
    """`HEXA_DELIVERY_LIMIT`: a whole number of deliveries from 1 up."""
    if not value:
        return DEFAULT_DELIVERY_LIMIT
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigurationError(
            f"{DELIVERY_LIMIT_ENV}={value!r}: use a whole number of deliveries from 1 up "
            f"(default {DEFAULT_DELIVERY_LIMIT}): a message whose worker process dies that many "
            "times is dead-lettered"
        )
    return int(value)


def redact(text: str, settings: Settings) -> str:
    """`text` with the broker's and the backend's passwords replaced by `**`."""
    for secret in settings.secrets():
        text = text.replace(secret, "**")
    return text


def _password(url: str) -> str | None:
    try:
        return urlparse(url.strip()).password
    except ValueError:  # not a URL: no password in it
        return None


#: The passwords of every `Settings` made in this process, longest first.
_secrets: tuple[str, ...] = ()
#: Shorter passwords are not looked for in free text: "**" for every "a" in every log line
#: would hide everything and protect nothing.
MIN_REDACTED = 4


def _remember(secrets: list[str]) -> None:
    global _secrets
    found = {secret for secret in secrets if len(secret) >= MIN_REDACTED}
    if not found <= set(_secrets):
        _secrets = tuple(sorted(set(_secrets) | found, key=len, reverse=True))


def redact_known(text: str) -> str:
    """`text` without any password of this process's broker and backend URLs (`**` instead).

    For places that have no `Settings` at hand: log lines, stored failures, task events.
    """
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "**")
    return text


def redact_value(value: Any) -> Any:
    """`value` with `redact_known` applied to every string inside (lists, tuples, dicts)."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact_known(value)
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_value(item) for item in value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    return value
