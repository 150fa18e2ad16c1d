"""Final trainings side by side: ``jobs`` worker processes, each with its share of the CPU's threads.

Why processes and not more threads: TensorFlow's CPU kernels do not all use a second
thread. On this 2-core machine a network whose early stages keep 112x112 feature maps
(the ladder benchmark's trial 2, 148 MMACs at 224 px) trained an epoch in 79 s with two
threads and in 82 s with one thread while another training ran beside it, so two such
trainings side by side take about half the time of two in a row; MobileNetV3-Small, whose
kernels do use both threads (20 s an epoch with two, 41 s with one beside another),
gains nothing. Each job holds its own training in memory (8 GB for MobileNetV3-Large at
224x224), which is why one job is the default.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable, Sequence
from typing import Any

from archsearch.data import Dataset
from archsearch.family.recipe import FinalRecipe
from archsearch.family.runs import RunStore, SeedRun
from archsearch.spec import NetworkSpec

Event = tuple[int, int, dict[str, float]]
"""(task index, epochs done (0: started), training metrics) sent by a worker."""

_events: Any = None
_data: dict[tuple[str, int, int], Dataset] = {}


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    """This machine's cores shared out: at least one thread per job."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // jobs)


def _start_worker(threads: int, events: Any) -> None:
    """Each worker's TensorFlow uses ``threads`` threads; progress goes to ``events``."""
    global _events
    _events = events
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _train(index: int, spec: NetworkSpec, recipe: FinalRecipe, seed: int, root: str) -> SeedRun:
    from archsearch.data import load_dataset

    key = (recipe.dataset, recipe.data_seed, spec.input.size)
    if key not in _data:
        _data.clear()  # one deployment size per worker at a time
        _data[key] = load_dataset(recipe.dataset, size=spec.input.size, seed=recipe.data_seed)
    _events.put((index, 0, {}))

    def progress(epoch: int, metrics: dict[str, float]) -> None:
        _events.put((index, epoch, metrics))

    return RunStore(root).train(spec, _data[key], recipe, seed, progress)


def train_side_by_side(tasks: Sequence[tuple[NetworkSpec, int]], store: RunStore, recipe: FinalRecipe, jobs: int,
                       on_event: Callable[[Event], None], on_done: Callable[[int, SeedRun], None]) -> None:
    """Train every (spec, seed) of ``tasks`` in ``jobs`` worker processes, in the order given (give the
    largest first), calling ``on_event`` with each worker's progress and ``on_done`` with each finished run
    (``tasks`` index, run) in this process. A failed training, or an interrupt, stops the workers and
    raises; the runs that finished are stored and reused by the next family run."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fresh TensorFlow per worker, never a forked one
    events = context.Queue()
    # Leaving the block terminates the workers, so a failure or Ctrl-C leaves no training running.
    with context.Pool(jobs, initializer=_start_worker, initargs=(threads_per_job(jobs), events)) as pool:
        pending = {index: pool.apply_async(_train, (index, spec, recipe, seed, str(store.root)))
                   for index, (spec, seed) in enumerate(tasks)}
        while pending:
            try:
                on_event(events.get(timeout=1.0))
            except queue.Empty:
                pass
            for index in [i for i, result in pending.items() if result.ready()]:
                _drain(events, on_event)  # a run's epochs are told before it is done
                on_done(index, pending.pop(index).get())  # raises the worker's error


def _drain(events: Any, on_event: Callable[[Event], None]) -> None:
    while True:
        try:
            on_event(events.get_nowait())
        except queue.Empty:
            return


__all__ = ["Event", "threads_per_job", "train_side_by_side"]
