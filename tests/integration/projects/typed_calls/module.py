"""The typed_calls module: decorated tasks plus one hand-written entry the stubs must skip."""

from __future__ import annotations

from modules.typed_calls import tasks

from hexa import Module


class TypedCallsModule(Module):
    @property
    def service(self) -> dict[str, object]:
        services = super().service
        entries = dict(services["typed_calls_tasks"])  # type: ignore[call-overload]
        entries["legacy-name"] = tasks.legacy
        return {**services, "typed_calls_tasks": entries}
