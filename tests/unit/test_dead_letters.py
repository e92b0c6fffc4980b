"""Dead-letter records and the store, on the embedded file broker (no server needed)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from kombu import Connection, Queue
from kombu.message import Message

import hexa
from hexa._cli import main
from hexa._dead_letters import (
    KEPT_WHEN_CUT,
    DeadLetter,
    DeadLetterStore,
    dead_queue_name,
    from_message,
)
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

    def test_a_replay_starts_the_delivery_count_afresh(self, settings: hexa.Settings) -> None:
        counted = {"task": "a.b", "id": "t9", "hexa-deliveries": 5, "x-delivery-count": 5}
        letter = from_message(message(b"[[1], {}, {}]", counted, "work"), "why", settings)
        assert letter.headers["hexa-deliveries"] == 5  # the letter shows how often it died
        store = DeadLetterStore(settings)
        store.add(letter)
        store.replay(["t9"])
        with Connection(
            settings.broker_url, transport_options=settings.broker_transport_options
        ) as conn:
            replayed = Queue("work", routing_key="work")(conn.default_channel).get(no_ack=True)
            assert replayed is not None
            assert replayed.headers["id"] == "t9"
            assert "hexa-deliveries" not in replayed.headers
            assert "x-delivery-count" not in replayed.headers


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


def small(settings: hexa.Settings, limit: int) -> hexa.Settings:
    return attrs.evolve(settings, max_message_size=limit)


class TestBoundedLetters:
    def test_an_escaped_text_body_is_kept_whole_in_base64_when_that_fits(
        self, settings: hexa.Settings
    ) -> None:
        raw = "\x01" * 3000  # 6 bytes each as JSON text, 4/3 in base64
        letter = from_message(message(raw.encode(), {"task": "a.b", "id": "t"}), "why", settings)
        fitted, text = letter.fitted(10_000)
        assert len(letter.to_json()) > 10_000 >= len(text)
        assert fitted.body_encoding == "base64"
        assert not fitted.truncated
        assert fitted.raw_body() == raw.encode()

    def test_a_letter_too_big_keeps_the_start_of_its_body_and_says_so(
        self, settings: hexa.Settings
    ) -> None:
        raw = bytes(range(256)) * 1024  # 256 KiB
        letter = from_message(message(raw, {"task": "a.b", "id": "t"}), "why", settings)
        fitted, text = letter.fitted(200_000)
        assert len(text) <= 200_000
        assert fitted.truncated
        assert fitted.body_size == len(raw)
        assert fitted.raw_body() == raw[:KEPT_WHEN_CUT]
        assert "body cut to fit the size limit: 65,536 of 262,144 bytes kept" in fitted.reason

    def test_below_even_that_only_the_reason_is_kept(self, settings: hexa.Settings) -> None:
        letter = from_message(message(b"x" * 100_000, {"task": "a.b"}), "why", settings)
        fitted, text = letter.fitted(2_000)
        assert len(text) <= 2_000
        assert fitted.body == ""
        assert fitted.reason.startswith("why [body cut")

    def test_the_store_fits_letters_and_replay_skips_cut_ones(
        self, settings: hexa.Settings
    ) -> None:
        store = DeadLetterStore(small(settings, 100_000))
        whole = from_message(message(b"[[1], {}, {}]", {"task": "a.b", "id": "ok"}), "w", settings)
        big = from_message(message(b"x" * 200_000, {"task": "a.b", "id": "big"}), "w", settings)
        store.add(whole)
        store.add(big)
        assert [letter.truncated for letter in store.letters()] == [False, True]
        assert [letter.id for letter in store.replay()] == ["ok"]
        assert [(entry.id, entry.why) for entry in store.skipped] == [
            ("big", "its body was cut: not replayable")
        ]
        assert [letter.id for letter in store.letters()] == ["big"]  # still there

    def test_an_id_too_long_to_be_one_is_not_used_and_reasons_are_bounded(
        self, settings: hexa.Settings
    ) -> None:
        letter = from_message(message(b"x", {"task": "a.b", "id": "i" * 100_000}), "w", settings)
        assert letter.id == "abc"  # the correlation id, as for a message without an id
        assert len(from_message(message(b"x", {}), "r" * 10_000, settings).reason) == 1000


def publish_raw(settings: hexa.Settings, body: bytes, content_type: str) -> None:
    with Connection(
        settings.broker_url, transport_options=settings.broker_transport_options
    ) as conn:
        conn.Producer().publish(
            body,
            exchange="",
            routing_key=dead_queue_name(settings),
            declare=[DeadLetterStore(settings).queue],
            content_type=content_type,
            content_encoding="binary",
        )


class TestForeignEntries:
    def test_list_replay_and_purge_skip_and_report_foreign_entries(
        self, settings: hexa.Settings
    ) -> None:
        store = DeadLetterStore(settings)
        store.add(
            from_message(message(b"[[1], {}, {}]", {"task": "a.b", "id": "t1"}), "w", settings)
        )
        publish_raw(settings, b'{"hello": 1}', "application/json")
        publish_raw(settings, b"\x00\xff not json", "application/data")
        publish_raw(settings, b'{"id": 5, "task": [], "reason": 1}', "application/json")
        assert [letter.id for letter in store.letters()] == ["t1"]
        assert len(store.skipped) == 3
        assert all(entry.what.startswith("foreign entry") for entry in store.skipped)
        assert "\x00" not in store.skipped[1].what
        assert [letter.id for letter in store.replay()] == ["t1"]
        assert len(store.skipped) == 3
        assert store.purge() == 0
        assert len(store.skipped) == 3  # foreign entries are not ours to drop


class TestDeadListOutput:
    @pytest.fixture(autouse=True)
    def embedded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        for name in ("RABBITMQ_URL", "REDIS_URL", "HEXA_DEFAULT_QUEUE"):
            monkeypatch.delenv(name, raising=False)

    def test_headers_chosen_by_a_publisher_are_printed_escaped(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        settings = hexa.Settings.from_env(environ={}, cwd=tmp_path)
        settings.make_dirs()
        hostile = {"task": "a.b\x1b[2J\x1b[H", "id": "t1\r\nfake 0 dead letter(s)\u202e"}
        DeadLetterStore(settings).add(from_message(message(b"x", hostile), "why", settings))
        publish_raw(settings, b'{"hello": 1}', "application/json")
        assert main(["dead", "list"]) == 0
        out, err = capsys.readouterr()
        assert "\x1b" not in out
        assert "\r" not in out
        assert "\u202e" not in out
        assert out.count("\n") == 2  # one letter, one summary: no fake line
        assert "a.b\\x1b[2J\\x1b[H" in out
        assert "skipped foreign entry" in err
