"""The invoicing module: its services, including the tasks `@module_task` declared."""

from __future__ import annotations

from hexa import Module
from modules.invoicing.adapter.input.tasks import invoice  # noqa: F401  (declares the tasks)
from modules.invoicing.application.invoice_service import PurchaseInvoiceService


class InvoicingModule(Module):
    @property
    def service(self) -> dict[str, object]:
        return {
            "purchase_invoice_service": PurchaseInvoiceService,
            **super().service,  # "invoicing_tasks": {"emit_invoice": ...}
        }
