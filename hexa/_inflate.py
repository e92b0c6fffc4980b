"""Bounded decompression: a compressed message never inflates past the size limit in a worker.

kombu inflates the body of a message with a `compression` header as soon as it arrives, in
the worker's main process and with no limit: 204 KB of zlib became 200 MB there (2.27 GB at
its peak), once per delivery. `bound_decompression(limit)` registers kombu's own codecs (zlib,
bzip2, lzma) again with decoders that stop after `limit` bytes, and a refusal for any other
codec kombu knows (brotli, zstd when installed), whose inflated size is not bounded here. A
refused body is a decode error: the consumer dead-letters the message, still compressed.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from kombu import compression

from hexa._settings import MAX_MESSAGE_SIZE_ENV


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


#: kombu's codecs: content type, aliases, compress, a fresh decompressor, several streams?
_CODECS: tuple[tuple[str, list[str], Callable[[bytes], bytes], Callable[[], Any], bool], ...] = (
    ("application/x-gzip", ["gzip", "zlib"], zlib.compress, zlib.decompressobj, False),
    ("application/x-bz2", ["bzip2", "bzip"], bz2.compress, bz2.BZ2Decompressor, True),
    ("application/x-lzma", ["lzma", "xz"], lzma.compress, lzma.LZMADecompressor, True),
)


def inflate(
    body: bytes, fresh: Callable[[], _Decompressor], limit: int, streams: bool = True
) -> bytes:
    """`body` decompressed, or `ValueError` once the output passes `limit` bytes."""
    data, out = bytes(body), bytearray()
    while True:
        decompressor = fresh()
        out += decompressor.decompress(data, limit + 1 - len(out))  # never 0: 0 is unbounded
        if len(out) > limit:
            raise ValueError(
                f"the compressed body inflates past {limit:,} bytes ({MAX_MESSAGE_SIZE_ENV}); "
                "it was not inflated further"
            )
        if not decompressor.eof:
            raise ValueError("the compressed body is truncated")
        data = decompressor.unused_data
        if not (streams and data):
            return bytes(out)


def _bounded(fresh: Callable[[], Any], limit: int, streams: bool) -> Callable[[bytes], bytes]:
    return lambda body: inflate(body, fresh, limit, streams)


def _refuse(name: str) -> Callable[[bytes], bytes]:
    def refuse(body: bytes) -> bytes:
        raise ValueError(f"compression {name!r} is not accepted: its inflated size is unbounded")

    return refuse


def bound_decompression(limit: int) -> None:
    """Make every decoder kombu knows stop at `limit` bytes (this process, from now on)."""
    bounded = set()
    for content_type, aliases, compress, fresh, streams in _CODECS:
        compression.register(compress, _bounded(fresh, limit, streams), content_type, aliases)
        bounded.add(content_type)
    for content_type in set(compression.encoders()) - bounded:
        found: Any = compression.get_encoder(content_type)  # (encoder, content type)
        compression.register(found[0], _refuse(content_type), content_type)
