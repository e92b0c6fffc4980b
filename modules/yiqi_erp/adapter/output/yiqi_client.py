"""Client of the Yiqi ERP. In-memory here: the example needs no network."""

from __future__ import annotations

import itertools

import anyio


class YiqiClient:
    """Creates invoices in the ERP."""

    _numbers = itertools.count(1)

    async def create_invoice(
        self, purchase_invoice: dict[str, object], company_id: int
    ) -> dict[str, object]:
        await anyio.sleep(0.01)  # stands in for the HTTP call
        return {
            "erp_invoice": next(self._numbers),
            "company_id": company_id,
            "purchase_invoice_id": purchase_invoice["id"],
            "total": purchase_invoice["total"],
        }
