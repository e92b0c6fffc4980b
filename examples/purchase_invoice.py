"""Store a purchase invoice and enqueue its ERP invoice in one transaction (the outbox).

From the repository root, with `make worker` running in another terminal (it relays the
outbox of the example's database, `.hexa/app.db`):

    python -m examples.purchase_invoice 1500
"""

from __future__ import annotations

import sys

import anyio

from hexa import discover_modules
from modules.invoicing.application.invoice_service import PurchaseInvoiceService


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    discover_modules("modules", "module.py")  # the tasks_service the use case sends through
    invoice_id, erp = anyio.run(PurchaseInvoiceService().register, total)
    print(f"purchase invoice {invoice_id} stored; ERP task {erp.id} enqueued in its transaction")
    print(erp.get(timeout=60))


if __name__ == "__main__":
    main()
