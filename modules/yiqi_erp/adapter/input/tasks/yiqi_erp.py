"""Yiqi ERP tasks: async, retried with backoff, calling services through the locator."""

from __future__ import annotations

from hexa import Backoff, module_task, service_locator
from modules.yiqi_erp.adapter.output.yiqi_client import YiqiClient


@module_task(retry=Backoff(max_retries=5, max=600, jitter=True))
async def create_invoice_from_purchase_invoice(
    purchase_invoice_id: int, company_id: int = 316
) -> dict[str, object]:
    """Create the ERP invoice for a purchase invoice (the seed's async example)."""
    purchase_invoice_service = service_locator.get_service("purchase_invoice_service")()
    purchase_invoice = await purchase_invoice_service.get_one_by_id(purchase_invoice_id)
    return await YiqiClient().create_invoice(purchase_invoice, company_id)
