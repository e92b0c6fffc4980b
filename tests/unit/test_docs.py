"""The docs stay true to the code: links resolve, every variable and option is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from hexa import Backoff, FixedDelay, module_task
from hexa._definitions import CELERY_OPTIONS, HEXA_OPTIONS
from hexa._logging import FORMAT_ENV
from hexa._observe import CLIENT_METRICS_ENV
from hexa._options import SEND_TASK_OPTIONS
from hexa._settings import BACKEND_ENV, BROKER_ENV, HOME_DIR, PUBLISH_TIMEOUT_ENV, QUEUE_ENV
from hexa.metrics import METRICS_PORT_ENV
from tests.support.worker import REPO

PAGES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "CHANGELOG.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code is not links


def text(name: str) -> str:
    return (REPO / "docs" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    prose = CODE.sub("", page.read_text(encoding="utf-8"))
    for target in LINK.findall(prose):
        if target.startswith(("http://", "https://", "#")):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name}: {target}"


class TestConfigurationReference:
    def test_every_environment_variable_is_documented(self) -> None:
        page = text("configuration.md")
        names = (BROKER_ENV, BACKEND_ENV, QUEUE_ENV, FORMAT_ENV, PUBLISH_TIMEOUT_ENV)
        names += (METRICS_PORT_ENV, CLIENT_METRICS_ENV)
        for name in (*names, ".env", HOME_DIR):
            assert f"`{name}" in page, name

    def test_every_decorator_option_is_documented(self) -> None:
        page = text("configuration.md")
        options = [p for p in inspect.signature(module_task).parameters if p != "func"]
        assert options
        for option in options:
            assert f"`{option}=`" in page, option

    def test_every_policy_field_and_send_option_is_documented(self) -> None:
        page = text("configuration.md")
        fields = [*inspect.signature(Backoff).parameters, *inspect.signature(FixedDelay).parameters]
        for field in fields:
            assert f"`{field}=" in page, field
        for option in SEND_TASK_OPTIONS:
            assert f"`{option}=`" in page, option

    def test_every_advanced_format_key_is_documented(self) -> None:
        page = text("configuration.md")
        for key in CELERY_OPTIONS | HEXA_OPTIONS:
            assert f"`{key}`" in page, key
