"""The worker pool of an ingest: folders of a center in this process and a forkserver pool at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import TypeVar

from tqdm import tqdm

from brainfm.ingest.work import Job

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (folders done, folders in all), called after each folder
_BROKEN_POOL = (
    "A worker process died while starting or running (workers > 1). If you call brainfm from a Python script, "
    "put the call under `if __name__ == \"__main__\":`: worker processes (multiprocessing's forkserver) import "
    "the script again, and an unguarded call starts the whole ingest again inside each of them. Otherwise pass "
    "workers=1, or check the machine's memory (the kernel may have killed a worker)."
)


def map_jobs(
    fn: Callable[[Job], T], jobs: list[Job], workers: int, desc: str, progress: Progress | None = None
) -> Iterator[T]:
    """Ordered results of ``fn`` over jobs, computed by this process and ``workers - 1`` pool processes.

    This process takes jobs from the end of the list while the pool (forkserver) takes them from the front,
    so no time is lost while the pool's processes start and import their modules (about 1.5 s, as long as a
    whole small center takes), and ``workers`` processes are busy in total.
    """
    bar = tqdm(total=len(jobs), desc=desc, unit="folder", disable=None)  # disabled without a terminal
    finished = 0

    def tick() -> None:
        nonlocal finished
        finished += 1
        bar.update()
        if progress is not None:
            progress(finished, len(jobs))

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            result = fn(job)
            tick()
            yield result
        bar.close()
        return
    context = get_context("forkserver")
    context.set_forkserver_preload(["brainfm.ingest.work"])  # pool processes start with pydicom, numpy, scipy imported
    results: dict[int, T] = {}
    front, back, emitted = 0, len(jobs), 0
    running: dict[Future[T], int] = {}
    with ProcessPoolExecutor(workers - 1, mp_context=context) as pool:
        while emitted < len(jobs):
            while front < back and len(running) < 2 * (workers - 1):  # keep the pool fed, not flooded
                running[pool.submit(fn, jobs[front])] = front
                front += 1
            if front < back:
                back -= 1
                results[back] = fn(jobs[back])
                tick()
                done = {f for f in running if f.done()}
            else:
                done = wait(running, return_when=FIRST_COMPLETED).done
            for future in done:
                try:
                    results[running.pop(future)] = future.result()
                except BrokenProcessPool as e:
                    raise RuntimeError(_BROKEN_POOL) from e
                tick()
            while emitted in results:
                yield results.pop(emitted)
                emitted += 1
    bar.close()


