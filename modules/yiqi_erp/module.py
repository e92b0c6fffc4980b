"""The yiqi_erp module: the default `Module.service` emits its `yiqi_erp_tasks`."""

from __future__ import annotations

from hexa import Module
from modules.yiqi_erp.adapter.input.tasks import yiqi_erp  # noqa: F401  (declares the tasks)


class YiqiErpModule(Module):
    pass
