"""The embedded broker and result store under `.hexa/` are private to their user."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.message import Message

import hexa
from hexa._app import build_app
from hexa._dead_letters import DeadLetterStore, from_message
from hexa._options import SendOptions
from hexa._publisher import publish


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common default: files 0644, folders 0755, unless hexa says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def settings(tmp_path: Path) -> hexa.Settings:
    return hexa.Settings.from_env(environ={}, cwd=tmp_path)


class TestPrivateEmbeddedFiles:
    def test_every_folder_under_dot_hexa_is_0700(self, settings: hexa.Settings) -> None:
        settings.make_dirs()
        folders = [settings.home, *(p for p in settings.home.rglob("*") if p.is_dir())]
        assert len(folders) >= 5  # .hexa, broker, broker/queue, broker/control, results
        assert {str(p.relative_to(settings.home)): mode(p) for p in folders} == {
            str(p.relative_to(settings.home)): 0o700 for p in folders
        }

    def test_an_existing_world_readable_dot_hexa_is_tightened(
        self, settings: hexa.Settings
    ) -> None:
        (settings.home / "broker").mkdir(parents=True, mode=0o755)
        settings.home.chmod(0o755)
        settings.make_dirs()
        assert mode(settings.home) == 0o700
        assert mode(settings.home / "broker") == 0o700

    def test_messages_results_and_dead_letters_are_written_0600(
        self, settings: hexa.Settings
    ) -> None:
        app = build_app(settings)
        try:
            publish("m.t", [{"card": "4111 1111 1111 1111"}], {}, SendOptions(), app=app)
            app.backend.store_result("task-1", {"secret": 1}, "SUCCESS")
            letter = from_message(Message(body=b"x", headers={"id": "d"}), "why", settings)
            DeadLetterStore(settings).add(letter)
        finally:
            app.close()
        files = [p for p in settings.home.rglob("*") if p.is_file()]
        kinds = {p.parent.name for p in files}
        assert {"queue", "results"} <= kinds, files
        assert {str(p.relative_to(settings.home)): mode(p) for p in files} == {
            str(p.relative_to(settings.home)): 0o600 for p in files
        }
