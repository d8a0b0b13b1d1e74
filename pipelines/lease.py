"""One writer per OUT: the driver's lease file, `<logging_dir>/lease.json` (local or `s3://…`).

A driver takes the lease before it writes anything and holds it while the job runs: a daemon thread
rewrites its heartbeat every `HEARTBEAT_S` seconds; it is removed at the end, on error and on Ctrl-C.
A second driver on the same OUT refuses at once, naming the owner (user@host pid, since when, last
heartbeat). A lease left by a driver that died on this host (its pid is gone) is taken over with a
note; any other needs `--force-unlock`, and one whose heartbeat is older than `STALE_AFTER_S` is
reported as stale (that driver most likely crashed).

Taking it is create-if-absent: `os.link` of a complete temporary file on a local disk; on S3 a
conditional PUT (`If-None-Match: *`, s3fs's `mode="create"`); on other stores fsspec's exists-then-
write. Every write is then read back and must hold this driver's token. Race window: a store that
ignores the condition (fsspec's fallback, or an S3-compatible server without conditional writes)
lets two drivers that start within one round trip both see no lease; the later write wins, and the
earlier driver refuses only if its read-back comes after that write.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone

import fsspec
from fsspec.implementations.local import LocalFileSystem

from shards import atomic
from shards.layout import LEASE, join

HEARTBEAT_S = 30.0
STALE_AFTER_S = 10 * 60.0


class LeaseHeld(ValueError):
    """Another driver holds the lease; the message names it and how to proceed."""


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid {os.getuid()}"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def age_s(stamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


def read(path: str) -> dict | None:
    """The lease at `path`, None if there is none, `{}` if it cannot be parsed (a torn write)."""
    fs, p = fsspec.core.url_to_fs(path)
    try:
        return json.loads(fs.cat_file(p))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}


def create(path: str, data: bytes) -> bool:
    """Write `data` to `path` if no file is there (atomically where the store allows); False if one is."""
    fs, p = fsspec.core.url_to_fs(path)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(p), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(p), prefix=".lease-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.link(tmp, p)  # fails if the lease exists; the lease appears whole
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    try:
        fs.pipe_file(p, data, mode="create")
    except FileExistsError:
        return False
    return True


def process_gone(lease: dict) -> bool:
    """Whether the lease's driver ran on this host and its process no longer exists."""
    if lease.get("host") != socket.gethostname() or not isinstance(lease.get("pid"), int):
        return False
    try:
        os.kill(lease["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def describe(lease: dict) -> str:
    """`user@host pid N (since …, last heartbeat … ago)`, or what is known of a torn lease."""
    if not lease:
        return "an unreadable lease (a driver died while writing it)"
    beat = lease.get("heartbeat", "?")
    ago = f"{age_s(beat):.0f} s ago" if beat != "?" else "never"
    return (f"{lease.get('user', '?')}@{lease.get('host', '?')} pid {lease.get('pid', '?')} "
            f"(since {lease.get('started', '?')}, last heartbeat {beat}, {ago})")


def refusal(path: str, output: str, lease: dict) -> str:
    owner = describe(lease)
    stale = not lease or "heartbeat" not in lease or age_s(lease["heartbeat"]) > STALE_AFTER_S
    if stale:
        advice = (f"the lease is stale (no heartbeat for over {STALE_AFTER_S / 60:.0f} min): that driver most "
                  "likely crashed; rerun with --force-unlock to take the lease and resume")
    else:
        advice = ("wait for that run to finish or stop it; if it is not running any more (its machine is gone), "
                  "rerun with --force-unlock")
    return f"{output} is being written by {owner}; lease {path}: {advice}"


class Lease:
    """The lease of one driver on one logging dir; `take`, then `release` (see `held`)."""

    def __init__(self, logging_dir: str, output: str, heartbeat_s: float = HEARTBEAT_S):
        self.path, self.output, self.heartbeat_s = join(logging_dir, LEASE), output, heartbeat_s
        self.record = {"user": user(), "host": socket.gethostname(), "pid": os.getpid(), "started": now(),
                       "heartbeat": now(), "output": output, "token": uuid.uuid4().hex}
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _data(self) -> bytes:
        return json.dumps(self.record, indent=2).encode()

    def ours(self) -> bool:
        lease = read(self.path)
        return bool(lease) and lease.get("token") == self.record["token"]

    def take(self, force: bool = False) -> str | None:
        """Take the lease or raise `LeaseHeld`; returns a note naming a lease taken over, if any."""
        note = None
        while not create(self.path, self._data()):
            lease = read(self.path)
            if lease is None:
                continue  # released in between: try again
            if note or not (force or process_gone(lease)):  # `note`: one was removed, and another driver got in
                raise LeaseHeld(refusal(self.path, self.output, lease))
            note = f"took over the lease of {describe(lease)} ({'--force-unlock' if force else 'its process is gone'})"
            fs, p = fsspec.core.url_to_fs(self.path)
            fs.rm_file(p)
        if not self.ours():  # a store that ignored the condition, and a driver that wrote after us
            raise LeaseHeld(refusal(self.path, self.output, read(self.path) or {}))
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._thread.start()
        return note

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.ours():
                    self.lost = True
                    print(f"warning: the lease {self.path} was taken by another driver (--force-unlock): "
                          "this run no longer holds OUT; stop it", file=sys.stderr)
                    return
                self.record["heartbeat"] = now()
                atomic.write_text(self.path, self._data().decode())  # a reader never sees it torn
            except Exception as e:  # a storage hiccup: the next beat retries
                print(f"warning: lease heartbeat on {self.path} failed ({e})", file=sys.stderr)

    def release(self) -> None:
        """Stop the heartbeat and remove the lease, unless another driver has taken it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self.ours():
            fs, p = fsspec.core.url_to_fs(self.path)
            fs.rm_file(p)


@contextlib.contextmanager
def held(logging_dir: str, output: str, force: bool = False):
    """Hold the lease of `logging_dir` for the body (released on return, error and Ctrl-C)."""
    lease = Lease(logging_dir, output)
    note = lease.take(force)
    if note:
        print(f"note: {note}", file=sys.stderr)
    try:
        yield lease
    finally:
        lease.release()
