"""The real RabbitMQ and Redis: found, or a failure in CI (never a silent skip there)."""

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


def require(url: str, what: str) -> str:
    """The URL when its service answers; otherwise fail in CI and skip on a laptop."""
    if answers(url):
        return url
    message = f"{what} is not answering at {url}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run the integration tests)")
    pytest.skip(message)


def unique(prefix: str) -> str:
    """A name no other test (or concurrently running suite) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
