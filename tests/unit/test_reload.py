"""What `hexa worker --reload` watches."""

from __future__ import annotations

from pathlib import Path

import pytest

import hexa
from hexa._reload import CHILD_ENV, is_reload_child, watched_paths


class TestWatchedPaths:
    def test_modules_hexa_and_the_projects_own_packages_are_watched(self, tmp_path: Path) -> None:
        for folder in ("modules", "shared", "core", ".hidden", "data"):
            (tmp_path / folder).mkdir()
        for package in ("shared", "core", ".hidden"):
            (tmp_path / package / "__init__.py").touch()
        hexa_dir = Path(hexa.__file__).resolve().parent
        expected = [tmp_path / "modules", hexa_dir, tmp_path / "core", tmp_path / "shared"]
        assert watched_paths(tmp_path) == [p.resolve() for p in expected]

    def test_a_missing_modules_folder_is_left_out(self, tmp_path: Path) -> None:
        assert tmp_path / "modules" not in watched_paths(tmp_path)


class TestReloadChild:
    def test_only_the_supervisors_child_counts_as_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv(CHILD_ENV, raising=False)
        assert not is_reload_child()
        monkeypatch.setenv(CHILD_ENV, "1")
        assert is_reload_child()
