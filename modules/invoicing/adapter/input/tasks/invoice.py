"""Invoicing tasks: thin entry points that hand the work to the use case."""

from __future__ import annotations

from hexa import module_task
from modules.invoicing.application.invoice_service import InvoiceEmitter


@module_task
def emit_invoice(invoice_id: int | None = None) -> str:
    """Emit an invoice (the seed's `invoicing.emit_invoice`)."""
    return InvoiceEmitter().emit(invoice_id)
