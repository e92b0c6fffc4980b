"""`-> None` tasks for the publish-path tests: nothing stored on success, failures stored."""

from __future__ import annotations

from hexa import Module, module_task


@module_task(module="none_probe")
def quiet(x: int) -> None:
    return None


@module_task(module="none_probe")
def broken(x: int) -> None:
    raise ValueError(f"broken {x}")


class NoneProbeModule(Module):
    pass
