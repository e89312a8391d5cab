"""Reading and validating in a second process while this one writes.

Why: a bulk load is two halves of about equal cost — parsing and checking rows (Python, per row)
and writing them (row conversion, SQLite). On one core they add up; in two processes they overlap,
so the load takes about as long as the slower half. The producing process only reads the store
(its own connection, opened with :meth:`~store.base.GraphStore.process_opener`); every write
happens here, in the caller's transaction, in the order the rows were produced, so the store ends
up exactly as a one-process load leaves it.

All or nothing is kept: the producer sends rows only while it has seen no error, and its result
(or its exception, re-raised here) decides whether the caller commits. If the producer dies, or a
write here fails, the other side is stopped and the caller's transaction rolls back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from store.base import EdgeRow, NodeRow, WriteTransaction

T = TypeVar("T")
#: Inputs at least this big are worth a second process (bundles, table files): below it, starting
#: the interpreter (~0.5 s) costs more than the overlap saves.
PIPELINE_MIN_BYTES = 16 * 2**20
#: Pickled messages the producer may have queued for the pipe before it waits: a checked file
#: comes in one burst (the columnar path checks a whole file first), which the writer then takes
#: batch by batch while the producer goes on with the next file.
AHEAD_BYTES = 64 * 2**20
#: Pipe buffer asked for (Linux caps it at /proc/sys/fs/pipe-max-size, 1 MiB by default).
PIPE_BYTES = 1 << 20
ProgressFn = Callable[[int, int], None]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class PipelineError(RuntimeError):
    """The producing process failed in a way that cannot be handed back as it was: it ended
    without a result (killed, out of memory), or raised an exception that does not pickle (then
    its type, text and traceback are kept here)."""


class RowSink(Protocol):
    """Where a producer puts validated rows: a transaction here, or the pipe to one."""

    def nodes(self, cls: str, rows: Sequence[NodeRow]) -> None:
        """Checked rows of one class, as ``WriteTransaction.upsert_node_rows`` takes them. Rows,
        not typed dicts, cross the pipe: datetime objects cost ~5x more to pickle than their text."""

    def edges(self, rel: str, rows: Sequence[EdgeRow]) -> None:
        """Checked rows of one relation, as ``WriteTransaction.upsert_edge_rows`` takes them."""

    def prepared_nodes(self, cls: str, prepared: Any) -> None:
        """Checked nodes of one class as ``ColumnPreparer.nodes`` made them, for
        ``WriteTransaction.upsert_prepared_nodes``."""

    def prepared_edges(self, rel: str, prepared: Any) -> None:
        """Checked edges of one relation as ``ColumnPreparer.edges`` made them (in the
        producing process), for ``WriteTransaction.upsert_prepared_edges``."""

    def deletions(self, edges: list[tuple[str, str, str]], nodes: list[str]) -> None: ...

    def progress(self, done: int, total: int) -> None: ...


class TxSink:
    """Writes straight into an open transaction (the one-process load)."""

    def __init__(self, tx: WriteTransaction, progress: ProgressFn | None = None) -> None:
        self.tx = tx
        self._progress = progress

    def nodes(self, cls: str, rows: Sequence[NodeRow]) -> None:
        self.tx.upsert_node_rows(cls, rows)

    def edges(self, rel: str, rows: Sequence[EdgeRow]) -> None:
        self.tx.upsert_edge_rows(rel, rows)

    def prepared_edges(self, rel: str, prepared: Any) -> None:
        self.tx.upsert_prepared_edges(rel, prepared)

    def prepared_nodes(self, cls: str, prepared: Any) -> None:
        self.tx.upsert_prepared_nodes(cls, prepared)

    def deletions(self, edges: list[tuple[str, str, str]], nodes: list[str]) -> None:
        # edges first: a deleted node's own edges go with it anyway
        self.tx.delete_edges(edges)
        self.tx.delete_nodes(nodes)

    def progress(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(done, total)


#: The RowSink methods a producer's messages name (the first item of each message).
_SINK_CALLS = frozenset({"nodes", "edges", "prepared_nodes", "prepared_edges", "deletions", "progress"})


class _PipeSink:
    """The producer's side: every call becomes one pickled message on the pipe, in order."""

    def __init__(self, out: BinaryIO, ahead: int = AHEAD_BYTES) -> None:
        self._out = out
        self._ahead = ahead
        self._queued = 0
        self._room = threading.Condition()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._write_out, name="pipeline-sender", daemon=True)
        self._thread.start()

    def _write_out(self) -> None:
        """The sending thread: the pipe write waits (without the GIL) while the writing
        process is busy, and the producer goes on checking the next rows meanwhile."""
        while (data := self._queue.get()) is not None:
            try:
                if self._failed is None:
                    self._out.write(data)
                    self._out.flush()
            except BaseException as exc:  # the reader went away: the producer stops at its next send
                self._failed = exc
            with self._room:
                self._queued -= len(data)
                self._room.notify_all()

    def _send(self, msg: tuple[Any, ...]) -> None:
        data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
        with self._room:
            self._room.wait_for(lambda: self._queued < self._ahead or self._failed is not None)
            if self._failed is not None:
                raise self._failed
            self._queued += len(data)
        self._queue.put(data)

    def close(self) -> None:
        """Wait until everything queued is on the pipe."""
        self._queue.put(None)
        self._thread.join()
        if self._failed is not None:
            raise self._failed

    def nodes(self, cls: str, rows: Sequence[NodeRow]) -> None:
        self._send(("nodes", cls, rows))

    def edges(self, rel: str, rows: Sequence[EdgeRow]) -> None:
        self._send(("edges", rel, rows))

    def prepared_edges(self, rel: str, prepared: Any) -> None:
        self._send(("prepared_edges", rel, prepared))

    def prepared_nodes(self, cls: str, prepared: Any) -> None:
        self._send(("prepared_nodes", cls, prepared))

    def deletions(self, edges: list[tuple[str, str, str]], nodes: list[str]) -> None:
        self._send(("deletions", edges, nodes))

    def progress(self, done: int, total: int) -> None:
        self._send(("progress", done, total))


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a PipelineError with its text; the
    producer's traceback goes along as a note."""
    exc.add_note("raised in the validating process:\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        back = pickle.loads(pickle.dumps(exc))
    except Exception:  # any pickling failure: fall back to the text
        back = None
    if type(back) is not type(exc):
        out = PipelineError(f"{type(exc).__name__}: {exc}")
        out.__notes__ = list(getattr(exc, "__notes__", []))
        return out
    return exc


def _child_main(fd: int) -> None:
    """The second process's whole life (``python -m graph_loader.pipeline FD``): read the import
    path and the producer from stdin, run it, send its rows, then its result or its exception."""
    sys.path[:] = pickle.load(sys.stdin.buffer)  # before the producer: unpickling it imports
    produce: Callable[[RowSink], Any] = pickle.load(sys.stdin.buffer)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        sink = _PipeSink(out)
        try:
            try:
                result = produce(sink)
            except BaseException as exc:  # everything goes back to the caller
                sink._send(("raise", _portable(exc)))
            else:
                sink._send(("done", result))
        finally:
            sink.close()


def _widen(fd: int) -> None:
    """Let the producer run up to ~1 MiB (a few batches) ahead of the writes instead of the default
    64 KiB, so that neither side waits on the other's every hiccup. Best effort (Linux only)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)


def start_python(
    module: str, args: Sequence[str], job: bytes, keep_fd: int, quiet: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m module *args`` in a fresh interpreter: not a fork, so it shares no lock or
    connection with this process, and the caller's ``__main__`` is never re-run. It can import
    this project from any working directory, keeps ``keep_fd`` open, and reads this process's
    ``sys.path`` and then ``job`` (pickled) from its stdin. ``quiet`` sends its output to
    /dev/null. Raises OSError when it cannot start; one that dies at once shows as an early
    end of whatever it was to write on ``keep_fd``."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdin=subprocess.PIPE,
                            stdout=out, stderr=out, pass_fds=(keep_fd,))
    assert proc.stdin is not None
    try:
        proc.stdin.write(pickle.dumps(sys.path) + job)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    return proc


def run_beside(produce: Callable[[RowSink], T], tx: WriteTransaction, progress: ProgressFn | None = None) -> T:
    """Run ``produce(sink)`` in a new process and write what it sends into ``tx`` here.

    ``produce`` must be picklable (a module-level function or a ``functools.partial`` of one).
    The process is a fresh interpreter (``python -m graph_loader.pipeline``), not a fork, so it
    shares no open connection or lock with this one, and the caller's ``__main__`` is never
    re-run. Returns the producer's result, or raises its exception; in both cases every row it
    sent has been written into ``tx`` (which the caller then commits or rolls back)."""
    here = TxSink(tx, progress)
    job = pickle.dumps(produce)
    r, w = os.pipe()
    _widen(w)
    try:
        proc = start_python("graph_loader.pipeline", [str(w)], job, w)
    except OSError:
        os.close(r)
        raise
    finally:
        os.close(w)  # the child has its copy: a dead child then reads as end-of-file here, not a hang
    try:
        with os.fdopen(r, "rb", buffering=1 << 20) as stream:
            while True:
                try:
                    msg = pickle.load(stream)
                except EOFError:
                    raise PipelineError(
                        f"the validating process ended without an answer (exit code {proc.wait()}); "
                        "nothing was written"
                    ) from None
                kind = msg[0]
                if kind in _SINK_CALLS:  # a RowSink call, made here with the same arguments
                    getattr(here, kind)(*msg[1:])
                elif kind == "done":
                    result: T = msg[1]
                    return result
                elif kind == "raise":
                    raise msg[1]
                else:  # pragma: no cover - both ends are this module
                    raise PipelineError(f"unexpected message {kind!r} from the validating process")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


if __name__ == "__main__":
    from graph_loader.pipeline import _child_main as main  # the module's own copy, not __main__'s

    main(int(sys.argv[1]))
