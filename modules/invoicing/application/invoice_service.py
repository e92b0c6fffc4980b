"""Invoicing use cases. Tasks stay thin and call these."""

from __future__ import annotations

import os
import time
from typing import Any

from hexa import TaskResult, outbox, service_locator
from modules.invoicing.adapter.output.database import PurchaseInvoice, new_session


class InvoiceEmitter:
    """Emits invoices; the seed's example sleeps to stand in for real work."""

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = (
            float(os.environ.get("INVOICING_EMIT_SECONDS", "0.05")) if seconds is None else seconds
        )

    def emit(self, invoice_id: int | None = None) -> str:
        time.sleep(self.seconds)
        return "Factura emitida!" if invoice_id is None else f"Factura {invoice_id} emitida!"


class PurchaseInvoiceService:
    """Stores and reads purchase invoices (SQLAlchemy, see adapter/output/database.py)."""

    async def register(self, total: int, currency: str = "ARS") -> tuple[int, TaskResult[Any]]:
        """Store a purchase invoice and enqueue its ERP invoice in the same transaction.

        The seed sent the task after the commit with `countdown=30`, hoping the row would be
        there by then. Through the outbox the task is published only once this transaction
        has committed, and never if it rolls back (docs/outbox.md).
        """
        tasks_service = service_locator.get_service("tasks_service")
        async with await new_session() as session, session.begin():
            invoice = PurchaseInvoice(total=total, currency=currency)
            session.add(invoice)
            await session.flush()  # gives the invoice its id
            async with outbox(session):
                erp = tasks_service.send_task(
                    "yiqi_erp.create_invoice_from_purchase_invoice", args=[invoice.id]
                )
        return invoice.id, erp

    async def get_one_by_id(self, purchase_invoice_id: int) -> dict[str, object]:
        async with await new_session() as session:
            invoice = await session.get(PurchaseInvoice, purchase_invoice_id)
        if invoice is None:  # an id never stored here (`hexa send ... 7`): demo figures
            demo = purchase_invoice_id
            return {"id": demo, "total": 100 * demo, "currency": "ARS"}
        return {"id": invoice.id, "total": invoice.total, "currency": invoice.currency}
