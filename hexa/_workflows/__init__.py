"""Typed workflows over Celery's canvas: `task.s()`, `.then()`, `group()`, `WorkflowResult`."""

from hexa._workflows.result import WorkflowResult, WorkflowStep
from hexa._workflows.workflow import Workflow, group

__all__ = ["Workflow", "WorkflowResult", "WorkflowStep", "group"]
