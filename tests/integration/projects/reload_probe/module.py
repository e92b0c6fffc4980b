"""A task whose answer the hot-reload test rewrites on disk ("v1" becomes "v2")."""

from __future__ import annotations

from hexa import Module, module_task


@module_task
def version() -> str:
    return "v1"


class ReloadProbeModule(Module):
    pass
