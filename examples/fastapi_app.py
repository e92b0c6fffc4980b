"""An HTTP endpoint that enqueues a typed task without blocking the event loop.

From the repository root, with a worker running (`make worker` in another terminal):

    .venv/bin/uvicorn examples.fastapi_app:app  # or: python -m examples.fastapi_app
    curl -X POST localhost:8000/invoices/123/emit
    {"task_id": "4f0c…", "status": "PENDING"}
    curl localhost:8000/tasks/4f0c…
    {"task_id": "4f0c…", "status": "SUCCESS", "result": "Factura 123 emitida!", "error": null}

The worker and this app find each other through the same settings: RABBITMQ_URL and REDIS_URL,
or, with neither set, the embedded broker under `./.hexa/` (start both in the same directory).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import FastAPI, status

import hexa
from modules.invoicing.adapter.input.tasks.invoice import emit_invoice

app = FastAPI(title="hexa example: invoicing")


@app.post("/invoices/{invoice_id}/emit", status_code=status.HTTP_202_ACCEPTED)
async def emit(invoice_id: int) -> dict[str, str]:
    """Enqueue `invoicing.emit_invoice`; answer at once with the task id."""
    # `send_async` checks the arguments against the task's signature (mypy does too) and
    # publishes from a worker thread, so this loop keeps serving other requests meanwhile.
    result = await emit_invoice.send_async(invoice_id)
    return {"task_id": result.id, "status": result.status}


def _task_state(task_id: str) -> dict[str, Any]:
    """Read a task's state and outcome from the result backend (a blocking call)."""
    result = hexa.current_app().AsyncResult(task_id)
    state: dict[str, Any] = {"task_id": task_id, "status": result.status}
    outcome = result.result if result.ready() else None
    failed = isinstance(outcome, BaseException)
    state["result"] = None if failed else outcome
    state["error"] = f"{type(outcome).__name__}: {outcome}" if failed else None
    return state


@app.get("/tasks/{task_id}")
async def task_status(task_id: str) -> dict[str, Any]:
    """PENDING (unknown or waiting), STARTED, RETRY, SUCCESS or FAILURE, with the outcome."""
    return await anyio.to_thread.run_sync(_task_state, task_id)


def main() -> None:
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("pip install uvicorn, or run: uvicorn examples.fastapi_app:app") from None
    uvicorn.run(app)


if __name__ == "__main__":
    main()
