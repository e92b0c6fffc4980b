"""Task events (Flower, `celery events`): off until asked for, and never publisher-confirmed.

hexa's workers start with task events off, as Celery's and Flower's own default is;
`celery control enable_events` (which Flower sends) turns them on, on every pool. Events are
monitoring data, published transient on a non-durable exchange: waiting for the broker's
confirm of each one bought nothing and cost a confirmed round trip for three events per task.
On a threads-pool worker it also deadlocked: a pool thread waiting for an event's confirm
held the dispatcher's lock while the consumer thread, reading the same connection, took the
confirm and then waited for that lock. So the dispatcher's own channel never enters confirm
mode, whatever `confirm_publish` says for task messages.
"""

from __future__ import annotations

from typing import Any

from celery.app.events import Events as CeleryEvents
from celery.events.dispatcher import EventDispatcher as CeleryEventDispatcher


def unconfirmed(channel: Any) -> None:
    """Publish on `channel` without waiting for confirms (py-amqp, before its first publish).

    py-amqp puts a channel in confirm mode lazily, on its first confirmed publish; until then
    swapping the method back is all it takes.
    """
    if getattr(channel, "_confirm_selected", True) is False and hasattr(channel, "_basic_publish"):
        channel.basic_publish = channel._basic_publish


class EventDispatcher(CeleryEventDispatcher):
    """Celery's dispatcher whose own connection's channel never waits for confirms."""

    def enable(self) -> None:
        super().enable()
        state: Any = self  # celery-types does not declare the dispatcher's attributes
        if state.channel is None and state.producer is not None:  # its own connection
            unconfirmed(state.producer.channel)


class Events(CeleryEvents):
    dispatcher_cls = "hexa._events:EventDispatcher"
