"""Mapping B2MML files in a second process, merged here in file order.

Why: parsing and mapping is ~3/4 of a big import's CPU and files are independent until their
records are merged, so a second process can map part of them. What the mapping of a file leaves
behind is a sequence of calls (``batch.add_node``, ``batch.add_edge``, ``unmapped.add``,
``notes.add``, appends to the error list and to the links resolved at the end); the second
process records those calls instead of making them, and this process replays them, chunk by
chunk in the original file order, after mapping the chunks before them itself. Merging is then
exactly what one process does: same records, same merged properties, same report.

How the work is shared: the files are cut into chunks; this process takes chunks from the front,
the other one from about the middle on (a claim file, one byte per chunk, under ``flock``); when
this process reaches chunks the other one still maps, it merges those it finished and meanwhile
maps chunks from the back (recorded too, merged in their turn), so a busy machine shifts the
split by itself. The other process is a fresh interpreter (``python -m
graph_loader.b2mml.parallel DIR FD``, not a fork: no shared locks or connections, the caller's
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from graph_loader.b2mml.records import ImportBatch, NodeDraft, Origin, Problem, ProblemLog, paused_gc
from graph_loader.pipeline import start_python, usable_cpus

#: Imports with fewer bytes of XML than this stay in one process: the helper costs ~0.2 CPU s
#: to start (mapping runs at ~13 MB per CPU second). Measured on the small plant's files (map
#: phase, quiet machine): 4 MB 0.37 -> 0.29 s wall (+0.19 CPU s), 8 MB 0.66 -> 0.44 s (+0.20),
#: 16 MB 1.24 -> 0.87 s (+0.30).
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
#: Imports of at least this many files are read ahead by the compiled reader's threads when it is
#: in use (:func:`add_files`); below it, the files are few enough to map one by one.
READ_AHEAD_MIN_FILES = 64
#: Chunks are about this share of the bytes (but see the bounds below): small enough that the
#: last one the other process maps is not waited for long, big enough to cost nothing to claim.
CHUNKS = 128
CHUNK_MIN_BYTES = 256 * 1024
CHUNK_MAX_BYTES = 4 * 1024 * 1024

_NOTE = struct.Struct("<i")


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
    """Who maps which chunk: one byte per chunk (free, here, helper) in a small file both
    processes lock around each claim."""

    FREE, HERE, HELPER = 0, 1, 2

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR)

    @staticmethod
    def create(path: Path, chunks: int) -> _Claims:
        path.write_bytes(bytes(chunks))
        return _Claims(path)

    def _claim(self, pick: Callable[[bytes], int | None], who: int) -> int | None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            state = os.pread(self._fd, 1 << 20, 0)
            i = pick(state)
            if i is not None:
                os.pwrite(self._fd, bytes((who,)), i)
            return i
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def take(self, i: int) -> bool:
        """Chunk ``i`` for this process, if nobody has it."""
        return self._claim(lambda st: i if st[i] == _Claims.FREE else None, _Claims.HERE) is not None

    def take_last(self) -> int | None:
        """The last free chunk, for this process (the helper works forward from the middle)."""
        return self._claim(lambda st: i if (i := st.rfind(0)) >= 0 else None, _Claims.HERE)

    def take_for_helper(self, start: int) -> int | None:
        """The first free chunk from ``start`` on, else the last free one before it."""
        def pick(st: bytes) -> int | None:
            i = st.find(0, start)
            if i < 0:
                i = st.rfind(0, 0, start)
            return i if i >= 0 else None

        return self._claim(pick, _Claims.HELPER)

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


def recording_importer(make: Callable[..., Any], source_system: str, default_tz: tzinfo,
                       native: bool | None = None) -> Any:
    """An importer made by ``make`` (the caller's class, e.g.
    :class:`~graph_loader.b2mml.importer.B2MMLImporter`, so this module does not import it)
    whose merges are recorded; ``native``: whether it uses the compiled reader (None: as set)."""
    imp = make(source_system=source_system, default_tz=default_tz, native=native)
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


#: Origins travel as constructor calls: the named tuple's own pickling (``__getnewargs__``
#: through copyreg) is ~25 % slower to write and ~15 % slower to read.
_DISPATCH = {**copyreg.dispatch_table, Origin: _rebuild_origin}


def _child_main(folder: Path, fd: int) -> None:
    """The helper: claim chunks from the middle on, map each, leave its pickle in ``folder`` and
    say so on ``fd``. Stops at the first failure of any kind: the importing process then maps
    that chunk itself."""
    sys.path[:] = pickle.load(sys.stdin.buffer)
    job: dict[str, Any] = pickle.load(sys.stdin.buffer)
    chunks: list[list[str]] = job["chunks"]
    claims = _Claims(folder / "claims")
    with paused_gc():
        imp = recording_importer(job["importer"], job["source_system"], job["default_tz"], job["native"])
        while (i := claims.take_for_helper(job["start"])) is not None:
            for f in chunks[i]:
                imp.add_file(Path(f))
            part = take_recorded(imp)
            tmp = folder / f"{i}.tmp"
            with tmp.open("wb") as fh:
                pickler = pickle.Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL)
                pickler.dispatch_table = _DISPATCH
                pickler.dump(part)
            tmp.rename(folder / f"{i}.pkl")
            os.write(fd, _NOTE.pack(i))


# ---------------------------------------------------------------------------------------------
# The importing process
# ---------------------------------------------------------------------------------------------


def map_files_in_two(imp: Any, chunks: list[list[Path]]) -> int:
    """Add ``chunks`` (consecutive runs of the files, in order) to ``imp`` with the help of a
    second process; returns how many chunks that process mapped.

    This process maps chunks from the front straight into ``imp``; the helper maps from about
    the middle on. Once here reaches the helper's chunks, it merges those the helper finished and,
    while the next one is still being mapped there, takes chunks from the back (recorded, merged
    in their turn), so neither process waits for the other until the last chunk."""
    folder = Path(tempfile.mkdtemp(prefix="pg-b2mml-"))
    claims = _Claims.create(folder / "claims", len(chunks))
    proc: subprocess.Popen[bytes] | None = None
    notes: BinaryIO | None = None
    helped = 0
    try:
        # names, not Paths: a third of the pickle and unpickled 3x faster (str(Path(name)) == name);
        # the helper starts a little before the middle: merging its chunks costs here ~8 % of
        # mapping them, so this side reaches them early and merges them while the helper works
        job = {"chunks": [[str(f) for f in c] for c in chunks], "start": len(chunks) * 9 // 20,
               "importer": type(imp), "source_system": imp.batch.source_system, "default_tz": imp.default_tz,
               "native": imp._native is not None}
        try:
            payload: bytes | None = pickle.dumps(job)
        except Exception:  # e.g. a time zone object that does not pickle: no helper
            payload = None
        r, w = os.pipe()
        notes = os.fdopen(r, "rb", buffering=0)
        try:
            if payload is not None:
                proc = start_python("graph_loader.b2mml.parallel", [str(folder), str(w)], payload, w, quiet=True)
        except OSError:
            pass  # no helper (or it died at once): every chunk is mapped here
        finally:
            os.close(w)  # the helper has its copy: its end reads as end-of-file here
        alive = proc is not None
        recorder: Any = None
        stolen: dict[int, MappedChunk] = {}
        nxt = 0
        while nxt < len(chunks):
            part = stolen.pop(nxt, None)
            if part is None:
                if claims.take(nxt):
                    _add_chunk(imp, chunks[nxt])
                    nxt += 1
                    continue
                done = folder / f"{nxt}.pkl"  # the helper has it: finished yet?
                if done.exists():
                    with done.open("rb") as fh:
                        part = pickle.load(fh)
                    done.unlink()
                    helped += 1
                elif alive:
                    j = claims.take_last()
                    if j is not None:
                        recorder = recorder or recording_importer(type(imp), imp.batch.source_system, imp.default_tz,
                                                                  imp._native is not None)
                        _add_chunk(recorder, chunks[j])
                        stolen[j] = take_recorded(recorder)
                    else:  # nothing left to take: wait for the helper's next chunk (or its end)
                        alive = len(notes.read(_NOTE.size)) == _NOTE.size
                    continue
                else:  # the helper ended without it
                    _add_chunk(imp, chunks[nxt])
                    nxt += 1
                    continue
            replay(imp, part)
            if imp.progress is not None:
                imp.progress(len(chunks[nxt]))
            nxt += 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
        if notes is not None:
            notes.close()
        claims.close()
        shutil.rmtree(folder, ignore_errors=True)
    return helped


def _add_chunk(imp: Any, files: list[Path]) -> None:
    for f in files:
        imp.add_file(f)


def add_files(imp: Any, files: Sequence[Path]) -> None:
    """Map ``files`` into ``imp`` in order: read and mapped ahead in the compiled reader's threads
    when it is in use and a second core is there (while it takes most of the files), else, or
    then for the rest, in two processes when the import is big enough, else here."""
    cpus = usable_cpus()
    if cpus > 1 and len(files) >= READ_AHEAD_MIN_FILES and imp.reads_ahead:
        done = imp.add_files_ahead(files, workers=min(cpus - 1, 3))
        files = files[done:]
    sizes = []
    for f in files:
        try:
            sizes.append(f.stat().st_size)
        except OSError:
            sizes.append(0)  # reported by add_file
    chunks = chunked(files, sizes)
    if sum(sizes) < PARALLEL_MIN_BYTES or len(chunks) < 2 or usable_cpus() < 2:
        for f in files:
            imp.add_file(f)
        return
    map_files_in_two(imp, chunks)


if __name__ == "__main__":
    from graph_loader.b2mml.parallel import _child_main as main  # the module's own copy, not __main__'s

    main(Path(sys.argv[1]), int(sys.argv[2]))
