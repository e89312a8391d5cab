"""Which files a folder import reads, and in which order (iter_b2mml_files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from graph_loader.b2mml.importer import iter_b2mml_files


def _by_rglob(top: Path) -> list[Path]:
    """What the importer read before it listed folders itself."""
    return sorted(q for q in top.rglob("*") if q.is_file() and q.suffix.lower() == ".xml")


def test_same_files_in_the_same_order_as_rglob(tmp_path: Path) -> None:
    top = tmp_path / "in"
    for rel in ("b.xml", "a-b/x.xml", "a/b.xml", "a/B.XML", "a/.xml", "a/c.xml.bak", "a/d.Xml", "z/y/w.xml",
                ".hidden/h.xml", "a b/s p.xml", "Ä/ü.xml", "a/sub.xml/inner.xml", "notes.txt", "a0/x.xml"):
        f = top / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("<x/>", encoding="utf-8")
    os.symlink(top / "z", top / "linked")  # a link to a folder: not entered
    os.symlink(top / "linked", top / "dirlink.xml")  # a link to a folder named like a file: not a file
    os.symlink(top / "b.xml", top / "a" / "filelink.xml")  # a link to a file: read
    got = iter_b2mml_files([top])
    assert got == _by_rglob(top)
    assert [str(p) for p in got] == [str(p) for p in _by_rglob(top)]
    assert top / "a" / "filelink.xml" in got and top / "a" / ".xml" not in got and len(got) == 12


def test_files_and_relative_folders_keep_the_given_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    for rel in ("d/2.xml", "d/e/1.xml", "one.xml"):
        (tmp_path / rel).write_text("<x/>", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    got = iter_b2mml_files([Path("one.xml"), Path("d")])
    assert got == [Path("one.xml"), *_by_rglob(Path("d"))]
    assert [str(p) for p in got] == ["one.xml", "d/2.xml", "d/e/1.xml"]
