"""The notifications module registers its task the seed's way: a hand-written dict."""

from __future__ import annotations

from hexa import Module


class NotificationsModule(Module):
    @property
    def service(self) -> dict[str, object]:
        from modules.notifications.adapter.input.tasks import notification

        return {
            "notifications_tasks": {
                "send_notification": notification.send_notification,
            },
        }
