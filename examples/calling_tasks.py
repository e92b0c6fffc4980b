"""Calling tasks: typed `.send()`, delivery options, async callers and dispatch by name.

Run it from the repository root while a worker runs (`make worker` in another shell):

    python -m examples.calling_tasks
"""

from __future__ import annotations

import anyio

from hexa import DispatchError, discover_modules, service_locator
from modules.invoicing.adapter.input.tasks.invoice import emit_invoice
from modules.yiqi_erp.adapter.input.tasks.yiqi_erp import create_invoice_from_purchase_invoice


async def from_async_code(purchase_invoice_id: int) -> dict[str, object]:
    """An endpoint's way: neither publishing nor waiting blocks the event loop."""
    result = await create_invoice_from_purchase_invoice.send_async(purchase_invoice_id)
    return await result


def main() -> None:
    print(emit_invoice.send(123).get(timeout=30))
    print(emit_invoice.with_options(countdown=1, priority=5).send(7).get(timeout=30))

    discover_modules("modules", "module.py")  # also registers the seed's tasks_service
    tasks = service_locator.get_service("tasks_service")
    print(tasks.send_task("notifications.send_notification", args=[1, "Hello!"]).get(timeout=30))
    try:
        tasks.send_task("invoicing.emit_invoice", args=[1], retries=3)
    except DispatchError as error:
        print(f"refused before publishing: {error}")

    print(anyio.run(from_async_code, 42))


if __name__ == "__main__":
    main()
