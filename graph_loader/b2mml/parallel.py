"""Mapping B2MML files in a second process, merged here in file order.

Why: parsing and mapping is ~3/4 of a big import's CPU and files are independent until their
records are merged, so a second process can map part of them. What the mapping of a file leaves
behind is a sequence of calls (``batch.add_node``, ``batch.add_edge``, ``unmapped.add``,
``notes.add``, appends to the error list and to the links resolved at the end); the second
process records those calls instead of making them, and this process replays them, chunk by
chunk in the original file order, after mapping the chunks before them itself. Merging is then
exactly what one process does: same records, same merged properties, same report.

How the work is shared: the files are cut into chunks; this process takes chunks from the front,
the other one from the back (a two-counter claim file under ``flock``), so a busy machine
shifts the split by itself. The other process is a fresh interpreter (``python -m
graph_loader.b2mml.parallel DIR``, not a fork: no shared locks or connections, the caller's
``__main__`` is never re-run); it writes one pickle per chunk into a private temporary folder,
which bounds the memory by the chunk, not the number of files. Any chunk without a result (the
other process failed, died or never started) is mapped here, so the result never depends on it.
"""

from __future__ import annotations

import copyreg
import fcntl
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from graph_loader.b2mml.records import ImportBatch, NodeDraft, Origin, Problem, ProblemLog, paused_gc

#: Imports with fewer bytes of XML than this stay in one process (a second interpreter costs
#: ~0.2 CPU s to start, and mapping runs at ~15 MB per CPU second).
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
#: Chunks are about this share of the bytes (but see the bounds below): small enough that the
#: last one the other process maps is not waited for long, big enough to cost nothing to claim.
CHUNKS = 128
CHUNK_MIN_BYTES = 256 * 1024
CHUNK_MAX_BYTES = 4 * 1024 * 1024

_CLAIMS = struct.Struct("<qq")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def chunked(files: Sequence[Path], sizes: Sequence[int]) -> list[list[Path]]:
    """Consecutive runs of files of about the same number of bytes."""
    target = min(max(sum(sizes) // CHUNKS, CHUNK_MIN_BYTES), CHUNK_MAX_BYTES)
    out: list[list[Path]] = []
    cur: list[Path] = []
    acc = 0
    for f, n in zip(files, sizes, strict=True):
        cur.append(f)
        acc += n
        if acc >= target:
            out.append(cur)
            cur, acc = [], 0
    if cur:
        out.append(cur)
    return out


class _Claims:
    """Which chunks are taken: the next free one from the front and from the back, in a small
    file both processes lock around each claim."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR)

    @staticmethod
    def create(path: Path, chunks: int) -> _Claims:
        path.write_bytes(_CLAIMS.pack(0, chunks - 1))
        return _Claims(path)

    def _take(self, front: bool) -> int | None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            lo, hi = _CLAIMS.unpack(os.pread(self._fd, _CLAIMS.size, 0))
            if lo > hi:
                return None
            os.pwrite(self._fd, _CLAIMS.pack(lo + 1, hi) if front else _CLAIMS.pack(lo, hi - 1), 0)
            return int(lo if front else hi)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def front(self) -> int | None:
        return self._take(True)

    def back(self) -> int | None:
        return self._take(False)

    def close(self) -> None:
        os.close(self._fd)


# ---------------------------------------------------------------------------------------------
# Recording (the other process)
# ---------------------------------------------------------------------------------------------

#: What the recording batch hands back from ``add_node``; the mapping never reads it.
_NO_DRAFT = NodeDraft(cls="", id="", origin=Origin(""))


class _RecordingBatch(ImportBatch):
    """Keeps the calls, not their effect: the merge happens in the importing process."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []
        self.edge_calls: list[tuple[Any, ...]] = []

    def add_node(self, cls: str, node_id: str, origin: Origin, props: Mapping[str, Any] | None = None,
                 defaults: Mapping[str, Any] | None = None, explicit: bool = True) -> NodeDraft:
        # copied now: the chunk is pickled after later units ran
        self.calls.append((cls, node_id, origin, dict(props) if props else None,
                           dict(defaults) if defaults else None, explicit))
        return _NO_DRAFT

    def add_edge(self, src: str, rel: str, dst: str, origin: Origin, props: Mapping[str, Any] | None = None,
                 defaults: Mapping[str, Any] | None = None) -> Any:
        self.edge_calls.append((src, rel, dst, origin, dict(props) if props else None,
                                dict(defaults) if defaults else None))
        return None


class _RecordingLog(ProblemLog):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Origin, str]] = []

    def add(self, origin: Origin, message: str) -> None:
        self.calls.append((origin, message))


@dataclass(slots=True)
class MappedChunk:
    """Everything the mapping of one chunk of files did, in call order per kind."""

    files: list[Any] = field(default_factory=list)
    nodes: list[tuple[Any, ...]] = field(default_factory=list)
    edges: list[tuple[Any, ...]] = field(default_factory=list)
    unmapped: list[tuple[Origin, str]] = field(default_factory=list)
    notes: list[tuple[Origin, str]] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    equip_refs: list[Any] = field(default_factory=list)
    patches: list[Any] = field(default_factory=list)
    assembly: list[tuple[str, str, Origin]] = field(default_factory=list)
    sublots: list[tuple[str, str, Origin]] = field(default_factory=list)


def recording_importer(source_system: str, default_tz: tzinfo) -> Any:
    """A :class:`~graph_loader.b2mml.importer.B2MMLImporter` whose merges are recorded."""
    from graph_loader.b2mml.importer import B2MMLImporter

    imp = B2MMLImporter(source_system=source_system, default_tz=default_tz)
    imp.batch = _RecordingBatch()
    imp.unmapped = _RecordingLog()
    imp.notes = _RecordingLog()
    return imp


def take_recorded(imp: Any) -> MappedChunk:
    """What ``imp`` recorded since the last call (which it then forgets)."""
    batch: _RecordingBatch = imp.batch
    out = MappedChunk(files=imp.report.files, nodes=batch.calls, edges=batch.edge_calls,
                      unmapped=imp.unmapped.calls, notes=imp.notes.calls, errors=imp.errors,
                      equip_refs=imp._equip_refs, patches=imp._patches, assembly=imp._assembly,
                      sublots=imp._sublots)
    imp.report.files, batch.calls, batch.edge_calls = [], [], []
    imp.unmapped.calls, imp.notes.calls, imp.errors = [], [], []
    imp._equip_refs, imp._patches, imp._assembly, imp._sublots = [], [], [], []
    return out


def replay(imp: Any, part: MappedChunk) -> None:
    """Make the recorded calls on ``imp``, as mapping the chunk here would have made them."""
    imp.report.files.extend(part.files)
    add_node, add_edge = imp.batch.add_node, imp.batch.add_edge
    for cls, node_id, origin, props, defaults, explicit in part.nodes:
        add_node(cls, node_id, origin, props, defaults, explicit)
    for src, rel, dst, origin, props, defaults in part.edges:
        add_edge(src, rel, dst, origin, props, defaults)
    for origin, message in part.unmapped:
        imp.unmapped.add(origin, message)
    for origin, message in part.notes:
        imp.notes.add(origin, message)
    imp.errors.extend(part.errors)
    imp._equip_refs.extend(part.equip_refs)
    imp._patches.extend(part.patches)
    imp._assembly.extend(part.assembly)
    imp._sublots.extend(part.sublots)


def _rebuild_origin(o: Origin) -> tuple[type[Origin], tuple[Any, ...]]:
    return Origin, (o.file, o.line, o.path, o.column)


#: Origins travel as constructor calls: a frozen slotted dataclass otherwise unpickles through a
#: Python ``__setstate__`` (a third of the time to read a chunk here).
_DISPATCH = {**copyreg.dispatch_table, Origin: _rebuild_origin}


def _child_main(folder: Path) -> None:
    """The other process: claim chunks from the back, map each, leave its pickle in ``folder``.
    Stops at the first failure of any kind: the importing process maps that chunk itself."""
    sys.path[:] = pickle.load(sys.stdin.buffer)
    job: dict[str, Any] = pickle.load(sys.stdin.buffer)
    chunks: list[list[str]] = job["chunks"]
    claims = _Claims(folder / "claims")
    with paused_gc():
        imp = recording_importer(job["source_system"], job["default_tz"])
        while (i := claims.back()) is not None:
            for f in chunks[i]:
                imp.add_file(Path(f))
            part = take_recorded(imp)
            tmp = folder / f"{i}.tmp"
            with tmp.open("wb") as fh:
                pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
                pickler.dispatch_table = _DISPATCH
                pickler.dump(part)
            tmp.rename(folder / f"{i}.pkl")


# ---------------------------------------------------------------------------------------------
# The importing process
# ---------------------------------------------------------------------------------------------


def map_files_in_two(imp: Any, chunks: list[list[Path]]) -> int:
    """Add ``chunks`` (consecutive runs of the files, in order) to ``imp`` with the help of a
    second process; returns how many chunks that process mapped."""
    folder = Path(tempfile.mkdtemp(prefix="pg-b2mml-"))
    claims = _Claims.create(folder / "claims", len(chunks))
    proc: subprocess.Popen[bytes] | None = None
    helped = 0
    try:
        try:
            root = str(Path(__file__).resolve().parents[2])  # importable from any working directory
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
            proc = subprocess.Popen([sys.executable, "-m", "graph_loader.b2mml.parallel", str(folder)], env=env,
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            assert proc.stdin is not None
            # names, not Paths: a third of the pickle and unpickled 3x faster (str(Path(name)) == name)
            job = {"chunks": [[str(f) for f in c] for c in chunks], "source_system": imp.batch.source_system,
                   "default_tz": imp.default_tz}
            proc.stdin.write(pickle.dumps(sys.path) + pickle.dumps(job))
            proc.stdin.close()
        except (OSError, pickle.PicklingError):
            pass  # no helper: every chunk is mapped here
        last = -1
        while (i := claims.front()) is not None:
            _add_chunk(imp, chunks[i])
            last = i
        if proc is not None:
            proc.wait()
        for i in range(last + 1, len(chunks)):
            done = folder / f"{i}.pkl"
            if not done.exists():
                _add_chunk(imp, chunks[i])
                continue
            with done.open("rb") as fh:
                part: MappedChunk = pickle.load(fh)
            done.unlink()
            replay(imp, part)
            helped += 1
            if imp.progress is not None:
                imp.progress(len(chunks[i]))
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        claims.close()
        shutil.rmtree(folder, ignore_errors=True)
    return helped


def _add_chunk(imp: Any, files: list[Path]) -> None:
    for f in files:
        imp.add_file(f)


def add_files(imp: Any, files: Sequence[Path]) -> None:
    """Map ``files`` into ``imp`` in order: in two processes when the import is big enough and a
    second core is there, else here."""
    sizes = []
    for f in files:
        try:
            sizes.append(f.stat().st_size)
        except OSError:
            sizes.append(0)  # reported by add_file
    chunks = chunked(files, sizes)
    if sum(sizes) < PARALLEL_MIN_BYTES or len(chunks) < 2 or usable_cores() < 2:
        for f in files:
            imp.add_file(f)
        return
    map_files_in_two(imp, chunks)


if __name__ == "__main__":
    from graph_loader.b2mml.parallel import _child_main as main  # the module's own copy, not __main__'s

    main(Path(sys.argv[1]))
