"""`hexa stubs`: the generated client module, its types, `--check`, and mypy reading it."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest

from hexa import ConfigurationError, RemoteTask
from hexa._definitions import TaskDefinition
from hexa._stubs import render_stubs
from tests.support.worker import REPO

TYPED_CALLS = REPO / "tests" / "integration" / "projects" / "typed_calls"


class Invoice:
    """A type of the application: the stubs must not import it."""


def rich(
    amount: decimal.Decimal,
    due: datetime.date,
    /,
    *,
    tags: Sequence[str] = (),
    kind: Literal["a", "b"] = "a",
    invoice: Invoice | None = None,
    when: datetime.date = datetime.date(2026, 1, 1),
) -> dict[str, list[int]]:
    """Do rich things.

    More text that the stubs leave out.
    """
    return {}


def bound(self: Any, label: str) -> str:
    return label


def untyped(a, b=1):  # type: ignore[no-untyped-def]
    return a


def ghost(x: int, y: int) -> None:
    pass


ghost.__annotations__ = {"x": "Nowhere", "y": "list[Nowhere] | None", "return": "None"}


def definition(name: str, func: Callable[..., Any], **options: Any) -> TaskDefinition:
    return TaskDefinition(name=name, func=func, service="x_tasks", options=options)


DEFINITIONS = [
    definition("shop.rich", rich),
    definition("shop.bound", bound, bind=True),
    definition("alpha.untyped", untyped),
    definition("alpha.ghost", ghost),
    definition("alpha.bad-name", bound),
]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestRender:
    def test_same_tasks_in_any_order_give_the_same_text(self) -> None:
        assert render_stubs(DEFINITIONS, "tests") == render_stubs(DEFINITIONS[::-1], "tests")

    def test_namespaces_and_tasks_are_sorted(self) -> None:
        text = render_stubs(DEFINITIONS, "tests")
        assert '__all__ = ["alpha", "shop"]' in text
        assert text.index("class alpha:") < text.index("class shop:")
        assert "    bound = _shop__bound\n    rich = _shop__rich\n" in text

    def test_standard_library_types_are_imported_for_type_checking_only(self) -> None:
        text = render_stubs(DEFINITIONS, "tests")
        assert (
            "if typing.TYPE_CHECKING:\n"
            "    import collections.abc\n    import datetime\n    import decimal\n"
        ) in text
        assert (
            textwrap.dedent('''\
            @hexa.remote_task("shop.rich")
            def _shop__rich(
                amount: decimal.Decimal,
                due: datetime.date,
                /,
                *,
                tags: collections.abc.Sequence[str] = (),
                kind: typing.Literal['a', 'b'] = 'a',
                invoice: typing.Any | None = None,
                when: datetime.date = _DEFAULT,
            ) -> dict[str, list[int]]:
                """Do rich things."""
                raise NotImplementedError  # runs on a worker: call .send()
            ''')
            in text
        )

    def test_what_clients_cannot_import_becomes_any_with_a_note(self) -> None:
        text = render_stubs(DEFINITIONS, "tests")
        assert (
            "# typing.Any stands for Invoice (from tests.unit.test_stubs, which clients do "
            'not import)\n@hexa.remote_task("shop.rich")'
        ) in text
        assert "# typing.Any stands for Nowhere (not resolvable at run time)" in text
        assert "def _alpha__ghost(x: typing.Any, y: list[typing.Any] | None) -> None:" in text
        assert text.count("stands for Nowhere") == 1
        assert "_DEFAULT: typing.Any = ..." in text

    def test_bound_tasks_lose_their_first_parameter(self) -> None:
        assert "def _shop__bound(label: str) -> str:" in render_stubs(DEFINITIONS, "tests")

    def test_missing_annotations_are_written_as_any(self) -> None:
        text = render_stubs(DEFINITIONS, "tests")
        assert "def _alpha__untyped(a: typing.Any, b: typing.Any = 1) -> typing.Any:" in text

    def test_names_that_are_not_python_names_are_skipped_with_a_note(self) -> None:
        text = render_stubs(DEFINITIONS, "tests")
        assert "# skipped 'alpha.bad-name': not a Python name; send it with" in text

    def test_a_module_named_like_the_stubs_imports_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="module 'typing' would hide"):
            render_stubs([definition("typing.t", bound)])

    def test_the_text_imports_as_remote_tasks_that_check_their_arguments(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "generated_stubs.py"
        path.write_text(render_stubs(DEFINITIONS, "tests"))
        stubs = load(path)
        assert stubs.__all__ == ["alpha", "shop"]
        assert isinstance(stubs.shop.rich, RemoteTask)
        assert stubs.shop.rich.name == "shop.rich"
        with pytest.raises(TypeError, match=r"shop\.rich\(amount: decimal\.Decimal"):
            stubs.shop.rich.send(1)


def hexa(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hexa", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


CLIENT = """\
import datetime
from decimal import Decimal
from typing import assert_type

from hexa import TaskResult
from hexa_stubs import invoicing, typed_calls, yiqi_erp

assert_type(invoicing.emit_invoice.send(123), TaskResult[str])
assert_type(yiqi_erp.create_invoice_from_purchase_invoice.send(1).get(), dict[str, object])
assert_type(typed_calls.total.send([1], cap=2.0).get(), int)
typed_calls.schedule_payment.send(Decimal(1), datetime.date.today(), currency="USD")
typed_calls.whoami.with_options(countdown=1).send("x")
invoicing.emit_invoice.send("x")
typed_calls.schedule_payment.send(Decimal(1), datetime.date.today(), currency="EUR")
yiqi_erp.create_invoice_from_purchase_invoice.send()
invoicing.emit_invoice.with_options(retries=3)
invoicing.emit_invoice(1)
"""


CHECKED = ("client.py", "hexa_stubs.py")


class TestCommand:
    def test_check_passes_on_a_fresh_file_and_fails_on_a_stale_one(
        self, project: Callable[..., Path]
    ) -> None:
        root = project()
        made = hexa(root, "stubs")
        assert (made.returncode, made.stdout) == (0, "wrote hexa_stubs.py (3 tasks)\n")
        fresh = hexa(root, "stubs", "--check")
        assert (fresh.returncode, fresh.stdout) == (0, "hexa_stubs.py is up to date\n")
        with (root / "hexa_stubs.py").open("a") as file:
            file.write("# edited\n")
        stale = hexa(root, "stubs", "--check")
        assert stale.returncode == 1
        assert "hexa_stubs.py is stale; run: hexa stubs --out hexa_stubs.py" in stale.stderr
        (root / "hexa_stubs.py").unlink()
        missing = hexa(root, "stubs", "--check")
        assert missing.returncode == 1
        assert "hexa_stubs.py is missing; run: hexa stubs --out hexa_stubs.py" in missing.stderr

    def test_the_docstring_names_the_module_out_writes(self, project: Callable[..., Path]) -> None:
        root = project()
        assert hexa(root, "stubs", "--out", "tasks_client.py").returncode == 0
        text = (root / "tasks_client.py").read_text()
        assert "Regenerate with `hexa stubs --out tasks_client.py`;" in text
        assert "    from tasks_client import invoicing\n" in text
        assert "hexa_stubs" not in text

    def test_mypy_checks_calls_against_the_generated_stubs(
        self, project: Callable[..., Path], tmp_path: Path
    ) -> None:
        """A client outside the project, type-checked against hexa as installed (make install).

        No MYPYPATH: the development install must be one type checkers can follow (a link
        tree on a `.pth` path, not an import hook), as a wheel install (`pip install hexa`) is.
        """
        client = tmp_path / "client"
        client.mkdir()
        made = hexa(project(TYPED_CALLS), "stubs", "--out", str(client / "hexa_stubs.py"))
        assert made.returncode == 0, made.stderr
        (client / "client.py").write_text(CLIENT)
        environ = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
        checked = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", os.devnull, *CHECKED],
            cwd=client,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Cannot find implementation or library stub" not in checked.stdout, (
            "mypy cannot see the installed hexa: install it with `make install` (a strict "
            "editable install)\n" + checked.stdout
        )
        errors = [line for line in checked.stdout.splitlines() if ": error: " in line]
        assert [e.split(": error: ")[0] for e in errors] == [
            "client.py:13",
            "client.py:14",
            "client.py:15",
            "client.py:16",
            "client.py:17",
        ], checked.stdout
        assert "[arg-type]" in errors[0]
        assert "Literal['ARS', 'USD']" in errors[1]
        assert "[call-arg]" in errors[2]
        assert '"retries"' in errors[3]
        assert "not callable" in errors[4]
