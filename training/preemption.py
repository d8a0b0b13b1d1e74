"""Preemption: SIGTERM or SIGINT ends a run at a step boundary with a checkpoint and exit code 0.

SLURM, Kubernetes and torchrun signal the whole process group, DataLoader workers included; a
worker killed by the signal would take the loader down (torch raises in the trainer on SIGCHLD)
before the step could finish and the checkpoint be written. So the trainer's main process only
records the request (`on_stop_signals`), the workers ignore both signals (`ignore_stop_signals`),
and the trainer stops its workers itself once the checkpoint is written (`shutdown`). SIGINT too:
Ctrl-C reaches the whole foreground process group exactly as SLURM's SIGTERM does.

Invariant: a worker that ignores SIGTERM is never left to multiprocessing's exit handler, whose
`terminate()` is a SIGTERM and whose `join()` would then wait forever: `shutdown` kills what
torch's own shutdown leaves alive, and `shutdown_at_exit` runs it before that handler.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import weakref

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def on_stop_signals(handler):
    """While open, SIGTERM and SIGINT call `handler(signum, frame)` instead of ending the process."""
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def ignore_stop_signals(_worker_id: int) -> None:
    """`worker_init_fn`: a DataLoader worker leaves SIGTERM and SIGINT to the trainer."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def shutdown(iterator) -> None:
    """Stop the worker processes of a DataLoader iterator now (a no-op without workers).

    torch's own shutdown (the one its iterator runs when collected, and Lightning calls) asks each
    worker to exit and falls back to SIGTERM, which these workers ignore: what is left is killed."""
    stop = getattr(iterator, "_shutdown_workers", None)
    if stop is None:
        return
    stop()
    for worker in iterator._workers:
        if worker.is_alive():
            worker.kill()
            worker.join()


def shutdown_at_exit(iterator) -> None:
    """Run `shutdown(iterator)` at interpreter exit if the iterator is still alive then (an error
    before the trainer's own shutdown). atexit runs last-registered first, so this runs before
    torch's and multiprocessing's exit handlers, registered when they were imported."""
    atexit.register(_shutdown_if_alive, weakref.ref(iterator))


def _shutdown_if_alive(ref: weakref.ref) -> None:
    iterator = ref()
    if iterator is not None:
        shutdown(iterator)
