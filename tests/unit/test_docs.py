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
from hexa._settings import (
    BACKEND_ENV,
    BROKER_ENV,
    DELIVERY_LIMIT_ENV,
    HEARTBEAT_ENV,
    HOME_DIR,
    MAX_MESSAGE_SIZE_ENV,
    PUBLISH_TIMEOUT_ENV,
    QUEUE_ENV,
    QUEUE_TYPE_ENV,
)
from hexa.metrics import METRICS_PORT_ENV
from tests.support.worker import REPO

PAGES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "CHANGELOG.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # code is not links


def text(name: str) -> str:
    return (REPO / "docs" / name).read_text(encoding="utf-8")


def relative_links(page: Path) -> list[str]:
    """The targets of the page's links to files of this repository (code spans left out)."""
    prose = CODE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(prose) if not t.startswith(("http://", "https://", "#"))]


LINKS = [(page, target) for page in PAGES for target in relative_links(page)]


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.relative_to(REPO)}->{t}" for p, t in LINKS]
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    assert (page.parent / target.split("#")[0]).exists()


def test_every_docs_page_is_linked_from_the_index_and_the_readme_links_the_index() -> None:
    index = set(relative_links(REPO / "docs" / "README.md"))
    pages = {p.name for p in PAGES if p.parent.name == "docs" and p.name != "README.md"}
    assert pages - {target.split("#")[0] for target in index} == set()
    assert relative_links(REPO / "README.md")  # the front page links into docs/


class TestConfigurationReference:
    def test_every_environment_variable_is_documented(self) -> None:
        page = text("configuration.md")
        names = (BROKER_ENV, BACKEND_ENV, QUEUE_ENV, FORMAT_ENV, PUBLISH_TIMEOUT_ENV)
        names += (METRICS_PORT_ENV, CLIENT_METRICS_ENV, MAX_MESSAGE_SIZE_ENV, HEARTBEAT_ENV)
        names += (QUEUE_TYPE_ENV, DELIVERY_LIMIT_ENV)
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
