"""Invoicing use cases. Tasks stay thin and call these."""

from __future__ import annotations

import os
import time

import anyio


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
    """Reads purchase invoices (in memory here; a repository in a real module)."""

    async def get_one_by_id(self, purchase_invoice_id: int) -> dict[str, object]:
        await anyio.sleep(0)  # stands in for a database round trip
        return {"id": purchase_invoice_id, "total": 100 * purchase_invoice_id, "currency": "ARS"}
