"""The embedded broker and result store under `.hexa/`, private to the user who runs them.

They hold task arguments and results. kombu's file transport and Celery's file result store
create their files with the process's umask (0644 by default, world-readable), and kombu
moves each message through the system's temp folder on its way to a worker. Here every
folder under `.hexa/` is 0700 and every message and result file is created 0600, so no
other user of the machine reads them, there or on the way.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path
from time import monotonic
from typing import IO, Any, cast

from celery.backends.filesystem import FilesystemBackend
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path, root: Path) -> None:
    """Create `path` with every folder from `root` down to it 0700, tightening existing ones."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    for folder in (path, *path.parents):
        if folder.stat().st_mode & 0o077:
            folder.chmod(PRIVATE_DIR)
        if folder == root:
            return


def private_open(path: str | Path, mode: str = "rb", **kwargs: Any) -> IO[Any]:
    """`open()`, creating a file with mode 0600 (not the umask's 0644)."""
    return open(path, mode, opener=_private_opener, **kwargs)


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


_sequence = itertools.count()
#: kombu's platform lock (fcntl, or win32 on Windows), as its own `_put` takes it.
_kombu: Any = filesystem


class Channel(filesystem.Channel):
    """kombu's file channel; a message file is created 0600."""

    # The stubs of kombu's file Channel and of its base disagree on this signature.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """kombu's own `_put` (its file name and lock), with a private file.

        Within one millisecond kombu's names sort by a random uuid; a per-process counter
        before it keeps one process's messages in the order it sent them.
        """
        name = f"{round(monotonic() * 1000)}_{next(_sequence):012d}{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            with private_open(path, "wb", buffering=0) as file:
                _kombu.lock(file, _kombu.LOCK_EX)
                try:
                    file.write(str_to_bytes(dumps(payload)))
                finally:
                    _kombu.unlock(file)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        """kombu's; the exchange's routing table (queue names only) is then made 0600 too."""
        super()._queue_bind(exchange, routing_key, pattern, queue)
        cast(Any, self)._exchange_file(exchange).chmod(PRIVATE_FILE)


class Transport(filesystem.Transport):
    """The embedded broker: kombu's file transport with private message files."""

    Channel = Channel


class PrivateFilesystemBackend(FilesystemBackend):
    """Celery's file result store, writing each result 0600 in a 0700 folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("open", private_open)
        super().__init__(*args, **kwargs)
