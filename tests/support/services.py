"""The real RabbitMQ and Redis: found, or a failure (never a skip) that says how to start them."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

RABBITMQ_URL = os.environ.get("HEXA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("HEXA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), 2):
            return True
    except OSError:
        return False


#: How to run one of the real services here, for the failure message.
START = {
    "RabbitMQ": "rabbitmq-server -detached (or: docker run -d -p 5672:5672 rabbitmq:3)",
    "Redis": "redis-server --daemonize yes (or: docker run -d -p 6379:6379 redis:7)",
}


def require(url: str, what: str) -> str:
    """The URL when its service answers; otherwise the test fails, saying how to start it.

    Never a skip: a suite that skips its integration tests when a service is down passes
    without testing what matters. Point HEXA_TEST_RABBITMQ_URL / HEXA_TEST_REDIS_URL
    elsewhere, or deselect them: `pytest -m "not integration"`.
    """
    if answers(url):
        return url
    pytest.fail(
        f"{what} is not answering at {url}: start it ({START[what]}), point "
        f"HEXA_TEST_{what.upper()}_URL at one, or run pytest -m 'not integration'",
        pytrace=False,
    )


def unique(prefix: str) -> str:
    """A name no other test (or concurrently running suite) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
