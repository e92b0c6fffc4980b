"""Typed workflows over Celery's canvas: `task.s()`, `.then()`, `group()`, `WorkflowResult`."""

from hexa._workflows.result import PlannedStep, WorkflowResult
from hexa._workflows.workflow import Workflow, group

__all__ = ["PlannedStep", "Workflow", "WorkflowResult", "group"]
