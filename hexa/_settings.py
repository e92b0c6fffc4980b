"""Where the broker and the result store are: the environment, a `.env` file, or embedded."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
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
#: Socket timeouts on AMQP connections, so a broker that stops answering (a blocked
#: connection, a half-open socket) raises instead of hanging the caller forever.
SOCKET_TIMEOUT = 5


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


def mask(url: str) -> str:
    """The URL with its password replaced by `**`, safe to log or print."""
    return str(maybe_sanitize_url(url))


@attrs.frozen
class Settings:
    """Resolved connection settings. Build one with `Settings.from_env()`."""

    broker_url: str
    result_backend: str
    home: Path
    default_queue: str = "celery"
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT
    prefetch_multiplier: int = DEFAULT_PREFETCH

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

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
        }

    def secrets(self) -> list[str]:
        """The passwords in the broker and backend URLs: never to be printed or stored."""
        found = [urlparse(url).password for url in (self.broker_url, self.result_backend)]
        return sorted({form for pw in found if pw for form in (pw, unquote(pw))}, key=len)[::-1]

    def make_dirs(self) -> None:
        """Create the embedded broker's and result store's folders when they are in use."""
        if self.embedded_broker:
            for key in ("data_folder_in", "control_folder"):
                Path(str(self.broker_transport_options[key])).mkdir(parents=True, exist_ok=True)
        if self.embedded_backend:
            (self.home / "results").mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> Settings:
        """Read `RABBITMQ_URL`/`REDIS_URL` from the environment, then `./.env`.

        Unset (or empty) means the embedded default under `./.hexa/`, so a worker and a
        client started in the same directory find each other with no server at all.
        """
        cwd = (cwd or Path.cwd()).resolve()
        values = {**read_dotenv(cwd / ".env"), **(os.environ if environ is None else environ)}
        home = cwd / HOME_DIR
        return cls(
            # "localhost" only silences kombu's "no hostname" warning; the transport ignores it.
            broker_url=values.get(BROKER_ENV) or "filesystem://localhost/",
            result_backend=values.get(BACKEND_ENV) or (home / "results").as_uri(),
            home=home,
            default_queue=values.get(QUEUE_ENV) or "celery",
            publish_timeout=float(values.get(PUBLISH_TIMEOUT_ENV) or DEFAULT_PUBLISH_TIMEOUT),
            prefetch_multiplier=_prefetch(values.get(PREFETCH_ENV)),
        )


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


def redact(text: str, settings: Settings) -> str:
    """`text` with the broker's and the backend's passwords replaced by `**`."""
    for secret in settings.secrets():
        text = text.replace(secret, "**")
    return text
