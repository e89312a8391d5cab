"""What a benchmark process reads about itself."""

from __future__ import annotations

import resource
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ``ru_maxrss`` is only the fallback: Linux carries it
    over from the parent across fork and exec, so a child phase would report at least the parent's
    size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PhaseClock:
    """Wall and CPU seconds of a timed block, the CPU of the processes it started included: big
    loads and imports read and check in a second process (``graph_loader.pipeline``), whose CPU
    ``time.process_time`` would leave out. Use as ``with PhaseClock() as clock: ...``."""

    def __enter__(self) -> PhaseClock:
        self._kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_self = time.process_time() - self._cpu
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu_children = (kids.ru_utime + kids.ru_stime) - (self._kids.ru_utime + self._kids.ru_stime)
        self.cpu = self.cpu_self + self.cpu_children
        #: the largest peak RSS of any child process waited for so far (Linux: KiB -> MB)
        self.children_peak_rss_mb = kids.ru_maxrss / 1024 if self.cpu_children > 0 else 0.0

    def figures(self) -> dict[str, float]:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu, "cpu_seconds_self": self.cpu_self,
                "cpu_seconds_children": self.cpu_children, "peak_rss_children_mb": self.children_peak_rss_mb}
