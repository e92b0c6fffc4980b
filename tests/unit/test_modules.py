"""`discover_modules`: modules/<name>/module.py into the service locator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hexa import (
    DiscoveryError,
    DuplicateTaskError,
    ModuleImportError,
    ModuleRegistry,
    TasksService,
    discover_modules,
    service_locator,
)

Project = Callable[[dict[str, str]], Path]

DECORATED = """
from hexa import Module, module_task

@module_task
def emit_invoice(invoice_id: int) -> str:
    return "ok"

class InvoicingModule(Module):
    @property
    def service(self):
        return {"purchase_invoice_service": object, **super().service}
"""

HAND_WRITTEN = """
from hexa import Module

def send_notification(user_id: int, message: str) -> str:
    return "Sent"

class NotificationsModule(Module):
    @property
    def service(self):
        return {{"{service}": {{"send_notification": send_notification}}}}
"""


def files(**modules: str) -> dict[str, str]:
    tree = {"modules/__init__.py": ""}
    for name, source in modules.items():
        tree[f"modules/{name}/__init__.py"] = ""
        tree[f"modules/{name}/module.py"] = source
    return tree


class TestDiscoverModules:
    def test_registers_services_and_a_tasks_service(self, make_project: Project) -> None:
        make_project(
            files(
                invoicing=DECORATED,
                notifications=HAND_WRITTEN.format(service="notifications_tasks"),
            )
        )
        report = discover_modules("modules", "module.py")
        assert sorted(report.modules) == ["invoicing", "notifications"]
        assert report.services == {
            "invoicing_tasks": "invoicing",
            "notifications_tasks": "notifications",
        }
        assert "purchase_invoice_service" in service_locator
        tasks_service = service_locator.get_service("tasks_service")
        assert isinstance(tasks_service, TasksService)
        assert tasks_service.names() == [
            "invoicing.emit_invoice",
            "notifications.send_notification",
        ]
        assert "invoicing" in ModuleRegistry()

    def test_near_misses_and_skipped_folders_are_reported(self, make_project: Project) -> None:
        tree = files(notifications=HAND_WRITTEN.format(service="notifications_task"))
        tree["modules/empty/__init__.py"] = ""
        make_project(tree)
        report = discover_modules()
        assert report.services == {}
        assert any("notifications_task" in note for note in report.near_misses)
        assert report.skipped == ["empty: no module.py"]

    def test_broken_module_fails_loudly_with_its_path(self, make_project: Project) -> None:
        root = make_project(files(broken="import does_not_exist\n"))
        with pytest.raises(ModuleImportError) as raised:
            discover_modules()
        module_py = str(root / "modules" / "broken" / "module.py")
        assert raised.value.path == module_py
        assert str(raised.value) == (
            f"could not import {module_py}, line 1: ModuleNotFoundError: "
            "No module named 'does_not_exist'"
        )

    def test_an_error_in_a_task_file_names_that_file_and_line(self, make_project: Project) -> None:
        tree = files(orders="from modules.orders import tasks  # noqa: F401\n")
        tree["modules/orders/tasks.py"] = "import os\n\nfrom os import no_such_name\n"
        root = make_project(tree)
        with pytest.raises(ModuleImportError) as raised:
            discover_modules()
        folder = root / "modules" / "orders"
        assert raised.value.origin == f"{folder / 'tasks.py'}, line 3"
        assert str(raised.value).startswith(
            f"could not import {folder / 'tasks.py'}, line 3 (imported by {folder / 'module.py'}): "
            "ImportError: cannot import name 'no_such_name' from 'os'"
        )

    def test_a_syntax_error_names_the_line_that_does_not_parse(self, make_project: Project) -> None:
        tree = files(orders="from modules.orders import tasks  # noqa: F401\n")
        tree["modules/orders/tasks.py"] = "def ok() -> None:\n    pass\n\ndef broken(:\n"
        root = make_project(tree)
        with pytest.raises(ModuleImportError) as raised:
            discover_modules()
        assert raised.value.origin == f"{root / 'modules' / 'orders' / 'tasks.py'}, line 4"

    def test_two_modules_claiming_one_task_name(self, make_project: Project) -> None:
        source = HAND_WRITTEN.format(service="shared_tasks")
        make_project(files(first=source, second=source.replace("Notifications", "Other")))
        with pytest.raises(DuplicateTaskError, match="'first' and by module 'second'"):
            discover_modules()

    def test_missing_package_explains_where_to_run(self, make_project: Project) -> None:
        make_project({"other.py": ""})
        with pytest.raises(DiscoveryError, match="run hexa from your project's root"):
            discover_modules("no_such_modules_package")
