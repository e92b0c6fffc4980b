"""The workflow_probe module: decorated tasks plus one hand-written seed-format entry."""

from __future__ import annotations

from modules.workflow_probe import tasks

from hexa import Module


class WorkflowProbeModule(Module):
    @property
    def service(self) -> dict[str, object]:
        services = super().service
        entries = dict(services["workflow_probe_tasks"])  # type: ignore[call-overload]
        entries["shout"] = tasks.shout
        return {**services, "workflow_probe_tasks": entries}
