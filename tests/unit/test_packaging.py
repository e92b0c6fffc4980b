"""How a fresh clone installs: what each make target installs, and a build with no warnings."""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from tests.support.worker import REPO


def installs(target: str, *variables: str) -> list[str]:
    """The lines installing hexa that `make TARGET` would run from nothing (a dry run)."""
    planned = subprocess.run(
        ["make", "--dry-run", "--always-make", target, *variables],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        line for line in planned.stdout.splitlines() if " pip install " in line and " -e " in line
    ]


class TestMakeInstalls:
    @pytest.mark.parametrize("target", ["worker", "dev", "beat"])
    def test_running_hexa_installs_hexa_without_the_dev_tools(self, target: str) -> None:
        (line,) = installs(target, "WORKER_EXTRAS=")
        assert line.endswith("-e '.'")
        (line,) = installs(target)  # with the Makefile's own WORKER_EXTRAS
        assert "dev" not in line.rpartition(" -e ")[2]

    @pytest.mark.parametrize("target", ["test", "lint", "chaos", "install"])
    def test_the_dev_targets_install_the_dev_extra(self, target: str) -> None:
        (line,) = installs(target, "WORKER_EXTRAS=")
        assert line.endswith("-e '.[dev]'")

    def test_the_benchmark_installs_the_peers_beside_the_dev_tools(self) -> None:
        (line,) = installs("bench", "WORKER_EXTRAS=")
        assert line.endswith("-e '.[dev,bench]'")

    def test_the_worker_extras_go_to_the_worker_and_to_the_tests(self) -> None:
        extras = "WORKER_EXTRAS=sqlalchemy otel"
        assert installs("worker", extras)[0].endswith("-e '.[sqlalchemy,otel]'")
        assert installs("test", extras)[0].endswith("-e '.[dev,sqlalchemy,otel]'")

    def test_hexa_is_installed_by_uv_which_the_venv_gets_first(self) -> None:
        lines = [
            line
            for line in subprocess.run(
                ["make", "--dry-run", "--always-make", "worker"],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout.splitlines()
            if " install " in line
        ]
        assert "pip install --quiet 'uv" in lines[0]
        assert ".venv/bin/uv pip install" in lines[1]

    def test_the_editable_install_is_one_type_checkers_can_follow(self) -> None:
        assert all("editable_mode=strict" in line for line in installs("worker") + installs("test"))


class TestProjectMetadata:
    def test_the_license_is_an_spdx_string_which_setuptools_builds_without_warning(self) -> None:
        project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
        assert project["project"]["license"] == "MIT"
        assert "setuptools>=77" in project["build-system"]["requires"][0]
