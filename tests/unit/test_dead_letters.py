"""Dead-letter records and the store, on the embedded file broker (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu import Connection, Queue
from kombu.message import Message

import hexa
from hexa._cli import main
from hexa._dead_letters import DeadLetter, DeadLetterStore, dead_queue_name, from_message
from hexa._settings import redact


def message(body: bytes, headers: dict[str, object], routing_key: str = "celery") -> Message:
    return Message(
        body=body,
        delivery_tag=1,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_info={"routing_key": routing_key},
        properties={"correlation_id": "abc", "priority": 3},
        headers=headers,
    )


@pytest.fixture
def settings(tmp_path: Path) -> hexa.Settings:
    found = hexa.Settings.from_env(environ={}, cwd=tmp_path)
    found.make_dirs()
    return found


class TestDeadLetter:
    def test_text_body_and_headers_survive_a_json_round_trip(self, settings: hexa.Settings) -> None:
        letter = from_message(
            message(b"[[1], {}, {}]", {"task": "a.b", "id": "t1"}), "unknown task", settings
        )
        again = DeadLetter.from_json(letter.to_json())
        assert again == letter
        assert (again.id, again.task, again.queue) == ("t1", "a.b", "celery")
        assert again.raw_body() == b"[[1], {}, {}]"
        assert again.properties == {"correlation_id": "abc", "priority": 3}

    def test_binary_body_is_kept_byte_for_byte(self, settings: hexa.Settings) -> None:
        raw = bytes(range(256))
        letter = from_message(message(raw, {}), "undecodable", settings)
        assert letter.body_encoding == "base64"
        assert DeadLetter.from_json(letter.to_json()).raw_body() == raw

    def test_message_without_id_or_task_still_gets_an_id(self, settings: hexa.Settings) -> None:
        letter = from_message(message(b"x", {}), "not a task message", settings)
        assert letter.id == "abc"  # the correlation id, else a fresh uuid
        assert letter.task == "?"


class TestRedaction:
    def test_passwords_of_both_urls_are_masked_plain_or_percent_encoded(self) -> None:
        settings = hexa.Settings.from_env(
            environ={
                "RABBITMQ_URL": "amqp://user:p%40ss-word@host:5672//",
                "REDIS_URL": "redis://:redis-secret@host:6379/0",
            }
        )
        text = "p@ss-word and p%40ss-word and redis-secret"
        assert redact(text, settings) == "** and ** and **"

    def test_settings_without_passwords_change_nothing(self, settings: hexa.Settings) -> None:
        assert redact("nothing to hide", settings) == "nothing to hide"


class TestEmbeddedStore:
    def test_add_list_replay_and_purge_on_the_file_broker(self, settings: hexa.Settings) -> None:
        store = DeadLetterStore(settings)
        for task_id in ("t1", "t2", "t3"):
            letter = from_message(
                message(b"[[1], {}, {}]", {"task": "a.b", "id": task_id}, "work"), "why", settings
            )
            store.add(letter)
        ids = sorted(letter.id for letter in store.letters())
        assert ids == ["t1", "t2", "t3"]
        assert sorted(letter.id for letter in store.letters()) == ids  # listing keeps them

        assert [letter.id for letter in store.replay(["t2"])] == ["t2"]
        assert sorted(letter.id for letter in store.letters()) == ["t1", "t3"]
        with Connection(
            settings.broker_url, transport_options=settings.broker_transport_options
        ) as conn:
            replayed = Queue("work", routing_key="work")(conn.default_channel).get(no_ack=True)
            assert replayed is not None
            assert replayed.headers["id"] == "t2"
            assert replayed.body == b"[[1], {}, {}]"
            assert replayed.properties["priority"] == 3

        assert store.purge() == 2
        assert store.letters() == []
        assert dead_queue_name(settings) == "celery.dead"


class TestDeadCommand:
    @pytest.fixture(autouse=True)
    def embedded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        for name in ("RABBITMQ_URL", "REDIS_URL", "HEXA_DEFAULT_QUEUE"):
            monkeypatch.delenv(name, raising=False)

    def test_replay_needs_ids_or_all_but_not_both(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["dead", "replay"]) == 2
        assert "give dead-letter ids, or --all" in capsys.readouterr().err
        assert main(["dead", "replay", "x", "--all"]) == 2

    def test_list_and_purge_an_empty_store(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["dead", "list"]) == 0
        assert "0 dead letter(s) in celery.dead" in capsys.readouterr().out
        assert main(["dead", "purge"]) == 0
        assert "purged 0 dead letter(s)" in capsys.readouterr().out
