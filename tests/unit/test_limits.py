"""Size limits: big arguments refused before publishing, compressed bodies inflated so far."""

from __future__ import annotations

import bz2
import lzma
import zlib
from pathlib import Path

import pytest
from kombu import Connection, Queue, compression
from kombu.message import Message

import hexa
from hexa import DispatchError
from hexa._app import build_app
from hexa._arguments import check_size
from hexa._inflate import bound_decompression, inflate
from hexa._options import SendOptions
from hexa._publisher import publish
from hexa._settings import DEFAULT_MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE_ENV

MiB = 1024 * 1024


class TestArgumentSize:
    def test_a_call_above_the_limit_is_refused_naming_the_limit(self) -> None:
        with pytest.raises(DispatchError, match=MAX_MESSAGE_SIZE_ENV) as caught:
            check_size("m.t", ["x" * 2000], {}, limit=1000)
        assert "1,000-byte limit" in str(caught.value)
        assert "send its key" in str(caught.value)

    def test_a_call_within_the_limit_passes(self) -> None:
        check_size("m.t", [1, "x" * 500], {"k": [1.5, None, True]}, limit=1000)

    def test_escapes_are_counted_as_json_writes_them(self) -> None:
        check_size("m.t", ["é" * 100], {}, limit=700)  # 100 x "\u00e9" = 600 bytes
        with pytest.raises(DispatchError):
            check_size("m.t", ["é" * 100], {}, limit=500)

    def test_a_huge_number_counts_its_digits(self) -> None:
        with pytest.raises(DispatchError):
            check_size("m.t", [10**3000], {}, limit=2000)

    def test_the_default_is_below_rabbitmqs_128_mib(self) -> None:
        assert 128 * MiB > DEFAULT_MAX_MESSAGE_SIZE
        assert hexa.Settings.from_env(environ={}).max_message_size == DEFAULT_MAX_MESSAGE_SIZE

    def test_a_bad_setting_names_the_variable(self) -> None:
        with pytest.raises(hexa.ConfigurationError, match=MAX_MESSAGE_SIZE_ENV):
            hexa.Settings.from_env(environ={MAX_MESSAGE_SIZE_ENV: "64MB"})

    def test_an_argument_past_the_default_limit_never_reaches_the_queue(
        self, tmp_path: Path
    ) -> None:
        settings = hexa.Settings.from_env(environ={}, cwd=tmp_path)
        app = build_app(settings)
        try:
            with pytest.raises(DispatchError, match="above the 67,108,864-byte limit"):
                publish("m.t", ["x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)], {}, SendOptions(), app=app)
            with Connection(
                settings.broker_url, transport_options=settings.broker_transport_options
            ) as conn:
                queue = Queue("celery", routing_key="celery")(conn.default_channel)
                queue.declare()
                assert queue.get(no_ack=True) is None
        finally:
            app.close()


def bomb(size: int) -> bytes:
    """`size` zero bytes, zlib-compressed without ever holding them all."""
    packer, chunk = zlib.compressobj(9), bytes(MiB)
    parts = [packer.compress(chunk) for _ in range(size // MiB)]
    return b"".join([*parts, packer.flush()])


class TestInflate:
    @pytest.mark.parametrize(
        ("pack", "fresh"),
        [
            (zlib.compress, zlib.decompressobj),
            (bz2.compress, bz2.BZ2Decompressor),
            (lzma.compress, lzma.LZMADecompressor),
        ],
    )
    def test_each_codec_inflates_within_the_limit_and_refuses_beyond(
        self, pack: object, fresh: object
    ) -> None:
        body = pack(b"a" * 1000)  # type: ignore[operator]
        assert inflate(body, fresh, limit=1000) == b"a" * 1000  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="inflates past 999 bytes"):
            inflate(body, fresh, limit=999)  # type: ignore[arg-type]

    def test_a_truncated_body_is_refused(self) -> None:
        with pytest.raises(ValueError, match="truncated"):
            inflate(
                zlib.compress(b"a" * 1000)[:-6], zlib.decompressobj, limit=10_000, streams=False
            )

    def test_concatenated_bzip2_streams_inflate_like_bz2_decompress(self) -> None:
        body = bz2.compress(b"a") + bz2.compress(b"b")
        assert inflate(body, bz2.BZ2Decompressor, limit=10) == bz2.decompress(body)


class TestBoundedMessages:
    @pytest.fixture(autouse=True)
    def restore_kombu(self) -> object:
        yield
        compression.register(zlib.compress, zlib.decompress, "application/x-gzip", ["gzip", "zlib"])
        compression.register(bz2.compress, bz2.decompress, "application/x-bz2", ["bzip2", "bzip"])
        compression.register(lzma.compress, lzma.decompress, "application/x-lzma", ["lzma", "xz"])

    def test_a_bomb_is_a_decode_error_and_the_body_stays_compressed(self) -> None:
        body = bomb(64 * MiB)
        bound_decompression(MiB)
        message = Message(body=body, headers={"compression": "zlib"}, content_type="x")
        assert message.errors, "the bomb was inflated"
        assert "inflates past 1,048,576 bytes" in str(message.errors[0][1])
        assert message.body == body

    def test_a_body_within_the_limit_inflates_as_before(self) -> None:
        bound_decompression(MiB)
        message = Message(body=zlib.compress(b"[1]"), headers={"compression": "gzip"})
        assert not message.errors
        assert message.body == b"[1]"
