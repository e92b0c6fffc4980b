"""A plain function registered by hand in the seed's simple format (see module.py)."""

from __future__ import annotations

import structlog

log = structlog.get_logger("notifications")


def send_notification(user_id: int, message: str) -> str:
    """Send a notification to a user."""
    log.info("notification.sent", user_id=user_id, message=message)
    return "Sent"
