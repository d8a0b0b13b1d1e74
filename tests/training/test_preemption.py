"""DataLoader workers outlive a SIGTERM to the process group, and the trainer's shutdown ends them."""

import os
import signal

import pytest
from torch.utils.data import DataLoader, IterableDataset

from training import preemption


class Counting(IterableDataset):
    def __iter__(self):
        n = 0
        while True:
            n += 1
            yield n


def test_a_worker_ignores_sigterm_and_sigint_until_shutdown():
    it = iter(DataLoader(Counting(), batch_size=None, num_workers=1,
                         worker_init_fn=preemption.ignore_stop_signals))
    assert int(next(it)) == 1  # the worker ran its init function
    (worker,) = it._workers
    for s in preemption.SIGNALS:
        os.kill(worker.pid, s)
    assert [int(next(it)) for _ in range(20)] == list(range(2, 22)), "the worker died of the signal"
    assert worker.is_alive()
    preemption.shutdown(it)
    assert not worker.is_alive() and worker.exitcode is not None


def test_stop_signals_call_the_handler_then_the_previous_handlers_return():
    seen, before = [], signal.getsignal(signal.SIGTERM)
    with preemption.on_stop_signals(lambda signum, _frame: seen.append(signum)):
        for s in preemption.SIGNALS:
            os.kill(os.getpid(), s)
    assert seen == list(preemption.SIGNALS)
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(KeyboardInterrupt):  # SIGINT is Python's default again
        os.kill(os.getpid(), signal.SIGINT)
