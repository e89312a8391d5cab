"""The compiled reader of plain messages (``native/b2mml_reader``) reads and maps what the Python
plain readers and emitters read and map: every file below is mapped twice by a recording
importer, with the compiled reader and without it, and everything recorded (calls with their
origins, problems, file summaries) is compared. A file outside the reader's narrow kind must be
left to lxml (None), and a value its mapping does not read for certain to the Python converters
("raw"); the same comparison then shows nothing changed for it."""

from __future__ import annotations

import random
import re
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from graph_loader.b2mml import native as N
from graph_loader.b2mml.importer import B2MMLImporter, import_b2mml, iter_b2mml_files
from graph_loader.b2mml.parallel import MappedChunk, recording_importer, take_recorded
from store.factory import open_store

from .conftest import FIXTURES, perturbed
from .test_export import _snapshot
from .test_plain_units import PERTURBATIONS


def _recorded(files: list[Path], native: bool, tz: tzinfo = UTC) -> MappedChunk:
    imp = recording_importer(B2MMLImporter, "B2MML", tz, native=native)
    assert (imp._native is not None) == native
    for f in files:
        imp.add_file(f)
    return take_recorded(imp)


def _same_with_and_without(files: list[Path], tz: tzinfo = UTC) -> None:
    compiled = _recorded(files, native=True, tz=tz)
    python = _recorded(files, native=False, tz=tz)
    for name in MappedChunk.__slots__:
        assert getattr(compiled, name) == getattr(python, name), name


def _taken(files: list[Path]) -> list[Path]:
    return [f for f in files if N.map_bytes(f.read_bytes()) is not None]


def test_the_compiled_reader_is_installed() -> None:
    assert N.available(), "native/b2mml_reader is not built: `make venv` (or make test) builds and installs it"


def test_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTGRAPH_B2MML_NATIVE", "0")
    assert N.mapper() is None and B2MMLImporter()._native is None
    assert N.mapper(True) is not None  # asked for explicitly
    monkeypatch.setenv("PLANTGRAPH_B2MML_NATIVE", "1")
    assert N.mapper() is not None and B2MMLImporter()._native is not None
    assert N.mapper(False) is None


def test_fixtures_map_alike() -> None:
    files = iter_b2mml_files([FIXTURES / d for d in ("messy", "v0401", "v0500", "v0600", "v0701", "unsafe")])
    _same_with_and_without(files)
    taken = _taken(files)
    # some are of its kind, most are not (comments, other encodings, unsafe files, other nouns)
    assert taken and len(taken) < len(files)
    assert not any("unsafe" in f.parts for f in taken)


def test_generated_plant_is_read_by_it_and_alike(tiny_b2mml: Path) -> None:
    files = iter_b2mml_files([tiny_b2mml])
    _same_with_and_without(files)
    left = {f.name.split("-")[0] for f in set(files) - set(_taken(files))}
    # every message of the three nouns it reads is taken; the others are left to lxml
    assert left <= {"equipment", "materials", "persons"}, left
    assert len(files) - len(_taken(files)) <= 4
    # and every one it takes, it maps itself
    assert all(_mapped(f) == "ops" for f in _taken(files))


def _mapped(path: Path, tz: int | None = 0) -> str | None:
    """Whether the compiled reader maps the file ("ops"), hands its texts to the Python
    converters ("raw"), or leaves it to lxml (None)."""
    got = N.map_bytes(path.read_bytes(), tz)
    return None if got is None else got[0]


#: Values in each place the mapping reads one of the kind, and whether it maps them itself (True)
#: or hands them to the Python converters: the forms it reads for certain, and others (some that
#: Python reads too, some that it refuses) on either side of each of its limits.
TIMES = [
    ("2026-03-02T06:00:00Z", True), ("2026-03-02T06:00:00z", True), ("2026-03-02T06:00:00+01:00", True),
    ("2026-03-02T06:00:00-05:30", True), ("2026-03-02T06:00:00-00:00", True), ("2026-03-02T06:00:00", True),
    ("2026-03-02T06:00:00.5+01:00", True), ("2026-03-02T06:00:00.000000Z", True),
    ("2026-03-02T06:00:00.1234567891-01:00", True), ("2024-02-29", True), ("2000-02-29T23:59:59Z", True),
    ("0001-01-01T00:00:00+23:59", True), ("9999-12-31T23:59:59-23:59", True),
    ("2026-02-29", False), ("1900-02-29T00:00:00Z", False), ("2026-13-01T00:00:00Z", False),
    ("2026-03-02T24:00:00Z", False), ("2026-03-02T06:60:00Z", False), ("2026-03-02T06:00:60Z", False),
    ("2026-03-02T06:00:00+24:00", False), ("2026-03-02T06:00:00+01:60", False), ("2026-03-02T06:00:00+0100", False),
    ("2026-03-02T06:00:00+01:00:30", False), ("2026-03-02 06:00:00", False), ("2026-03-02T06:00", False),
    ("2026-03-02T06:00:00.", False), ("2026-03-02T06:00:00,5Z", False), ("0000-01-01T00:00:00Z", False),
    ("20260302T060000Z", False), ("2026-W10-1", False), ("2026-03-02Z", False), ("yesterday", False),
]
QUANTITIES = [
    ("12", True), ("+12.50", True), ("-3", True), ("-0", True), (".5", True), ("5.", True), ("1.5E3", True),
    ("1e-2", True), ("2E+2", True), ("0.1000000000000000055511151231257827", True), ("1e-400", True),
    ("1e400", False), ("Infinity", False), ("NaN", False), ("1_000", False), ("12,5", False), ("0x10", False),
    ("1e", False), (".", False), ("+", False), ("1.2.3", False), ("1 000", False),
]
#: (file, element, value, mapped) for the code lists and the lot properties
CODES = [
    ("lots", "Status", "On Hold", True), ("lots", "Status", "QUALITY-inspection", True),
    ("lots", "Status", "lost", False), ("lots", "EquipmentLevel", "Production Line", True),
    ("lots", "EquipmentLevel", "enterprise", True), ("lots", "EquipmentLevel", "Cell", False),
    ("performance", "ResponseState", "in process", True), ("performance", "ResponseState", "Nope", False),
    ("schedule", "RequestState", "Waiting for approval", True), ("schedule", "RequestState", "later", False),
    ("performance", "MaterialUse", "By-product produced", True), ("performance", "MaterialUse", "Scrapped", False),
    ("schedule", "MaterialUse", "Consumed", False), ("schedule", "EquipmentLevel", "Area", True),
    ("schedule", "EquipmentLevel", "Cell", False), ("lots", "ID>expiry<", "ID>ExpiryDate<", False),
]
LOT_PROPERTIES = [("ProducedAt", True), ("produced-at", True), ("Produced At", True), ("_expiry_", True),
                  ("EXPIRY", True), ("Expiry2", False), ("status", True), ("quantity", False), ("colour", False)]


def _one_kind(tiny_b2mml: Path, tmp_path: Path, prefix: str, pattern: str, repl: str, mapped: bool) -> None:
    target = perturbed(tiny_b2mml, tmp_path, prefix, pattern, repl)
    assert _mapped(target) == ("ops" if mapped else "raw")
    _same_with_and_without([target])


@pytest.mark.parametrize("text,mapped", TIMES)
def test_times_map_alike(tiny_b2mml: Path, tmp_path: Path, text: str, mapped: bool) -> None:
    for prefix, tag in (("lots", "EffectiveStartDate"), ("lots", "ValueString"), ("performance", "ActualEndTime"),
                        ("performance", "StartTime"), ("schedule", "EndTime"), ("schedule", "PublishedDate")):
        _one_kind(tiny_b2mml, tmp_path, prefix, rf"<{tag}>[^<]*<", f"<{tag}>{text}<", mapped)


@pytest.mark.parametrize("text,mapped", QUANTITIES)
def test_quantities_map_alike(tiny_b2mml: Path, tmp_path: Path, text: str, mapped: bool) -> None:
    for prefix in ("lots", "performance", "schedule"):
        _one_kind(tiny_b2mml, tmp_path, prefix, r"<QuantityString>[^<]*<", f"<QuantityString>{text}<", mapped)


@pytest.mark.parametrize("prefix,tag,text,mapped", CODES)
def test_codes_map_alike(tiny_b2mml: Path, tmp_path: Path, prefix: str, tag: str, text: str, mapped: bool) -> None:
    if tag.startswith("ID>"):
        _one_kind(tiny_b2mml, tmp_path, prefix, tag, text, mapped)
    else:
        _one_kind(tiny_b2mml, tmp_path, prefix, rf"<{tag}>[^<]*<", f"<{tag}>{text}<", mapped)


@pytest.mark.parametrize("pid,mapped", LOT_PROPERTIES)
def test_lot_properties_map_alike(tiny_b2mml: Path, tmp_path: Path, pid: str, mapped: bool) -> None:
    _one_kind(tiny_b2mml, tmp_path, "lots", r"<ID>expiry<", f"<ID>{pid}<", mapped)


def test_default_zones(tiny_b2mml: Path, tmp_path: Path) -> None:
    """A time without an offset is mapped here only in a fixed default zone; in one with daylight
    saving time it is left to Python, with the same result."""
    assert [N.offset_minutes(z) for z in (UTC, timezone(timedelta(hours=5, minutes=30)),
                                          timezone(-timedelta(hours=2)), timezone(timedelta(seconds=30)),
                                          ZoneInfo("Europe/Berlin"))] == [0, 330, -120, None, None]
    target = perturbed(tiny_b2mml, tmp_path, "performance", r"<ActualEndTime>([^<+Z]*)[^<]*<", r"<ActualEndTime>\1<")
    assert _mapped(target, -120) == "ops" and _mapped(target, None) == "raw"
    for zone in (timezone(-timedelta(hours=2)), ZoneInfo("Europe/Berlin")):
        _same_with_and_without([target], zone)
    # with an offset written, no default is needed
    assert _mapped(next(f for f in sorted(tiny_b2mml.iterdir()) if f.name.startswith("performance")), None) == "ops"


def test_what_mapping_declines_is_reported_as_python_reports_it(tiny_b2mml: Path, tmp_path: Path) -> None:
    """Messages with something not mapped (an unknown level in a container's scope, a lot without
    a MaterialLotID, a second produced material, a planned lot): Python reports it."""
    cases = [
        ("schedule", r"<EquipmentLevel>Site<", "<EquipmentLevel>Cell<"),
        ("performance", r"<MaterialLotID>[^<]*</MaterialLotID>", ""),
        ("schedule", r"(<ID>MO-\d+-2</ID>)", r"\1<MaterialRequirement><ID>MR-9</ID><MaterialDefinitionID>MAT-OTHER"
         "</MaterialDefinitionID><MaterialUse>Produced</MaterialUse></MaterialRequirement>"),
        ("schedule", r"(<MaterialDefinitionID>[^<]*</MaterialDefinitionID>)",
         r"\1<MaterialLotID>LOT-X</MaterialLotID>"),
    ]
    for prefix, pattern, repl in cases:
        target = perturbed(tiny_b2mml, tmp_path, prefix, pattern, repl)
        assert _mapped(target) == "raw", pattern
        _same_with_and_without([target])
        assert _recorded([target], native=True).unmapped


#: (file prefix, pattern, replacement, whether the compiled reader takes the result): changes of
#: the kind of file, for the reader's own limits. Those it refuses are errors or other readings
#: for lxml, which the comparison covers.
NARROW = [
    ("lots", r"<Description>", "<Description>A &amp; B &#x41;&#66; &lt;x&gt; &quot;&apos; ", True),
    ("lots", r"<ID>LOT-", "<ID> \t LOT-", True),
    ("performance", r"<ID>RESP-", "<ID>&#x20;&#9;RESP-", True),
    ("lots", r"<MaterialLot>", '<MaterialLot\n   note="x"\n   >', True),
    ("lots", r"<Sync/>", "<Sync\n/>", True),
    ("performance", r"<MaterialUse>", "<MaterialUse >", True),
    ("schedule", r"<PublishedDate>", "<PublishedDate>\n\n", True),
    ("lots", r"<\?xml[^>]*\?>", "", True),
    ("lots", r"(<\?xml[^>]*\?>)", r"\1\n<!-- exported -->", True),
    ("lots", r"</SyncMaterialLot>\s*$", "</SyncMaterialLot>\n<!-- end -->\n", True),
    ("lots", r"^", "\ufeff", True),
    ("lots", r"<MaterialLot>", "<MaterialLot><!-- note -->", False),
    ("lots", r"\n", "\r\n", False),
    ("lots", r"<Description>", "<Description>caf\u00e9 ", False),
    ("lots", r"<Description>", "<Description><![CDATA[x]]>", False),
    ("lots", r"<Description>", "<Description>&nbsp;", False),
    ("lots", r"<Description>", "<Description>&#1;", False),
    ("lots", r"<Description>", "<Description>a ]]> b", False),
    ("lots", r"<MaterialLot>", '<MaterialLot note="a &amp; b">', False),
    ("lots", r"<MaterialLot>", '<MaterialLot a="1" a="2">', False),
    ("lots", r"<MaterialLot>", '<MaterialLot x:a="1">', False),
    ("lots", r"encoding='UTF-8'", "encoding='ISO-8859-1'", False),
    ("lots", r"encoding=", "encodinersion='1.0' encoding=", False),
    ("lots", r"encoding='UTF-8'", "encoding='UTF-8' standalone='yes' ", True),
    ("lots", r"encoding='UTF-8'", "encoding='UTF-8' standalone='YES'", False),
    ("lots", r"version='1.0' ", "version='1.0'", False),
    ("lots", r"<SyncMaterialLot ", "<?pi x?><SyncMaterialLot ", False),
    ("lots", r"(<\?xml[^>]*\?>)", r"\1<!DOCTYPE SyncMaterialLot>", False),
    ("lots", r"</SyncMaterialLot>", "</SyncMaterialLot><More/>", False),
    ("lots", r"</SyncMaterialLot>", "</SyncMaterialLot>junk", False),
    ("lots", r"<Status>([^<]*)</Status>", r"<x:Status>\1</x:Status>", False),
    ("lots", r"<Status>([^<]*)</Status>", r"<Status>\1</Statu>", False),
    ("lots", r"<Status>", "<1Status>", False),
]


@pytest.mark.parametrize("prefix,pattern,repl", PERTURBATIONS)
def test_perturbed_messages_map_alike(tiny_b2mml: Path, tmp_path: Path, prefix: str, pattern: str,
                                      repl: str) -> None:
    _same_with_and_without([perturbed(tiny_b2mml, tmp_path, prefix, pattern, repl)])


@pytest.mark.parametrize("prefix,pattern,repl,taken", NARROW)
def test_the_narrow_kind(tiny_b2mml: Path, tmp_path: Path, prefix: str, pattern: str, repl: str,
                         taken: bool) -> None:
    target = perturbed(tiny_b2mml, tmp_path, prefix, pattern, repl)
    assert (N.map_bytes(target.read_bytes()) is not None) is taken
    _same_with_and_without([target])


def test_prefixed_elements(tiny_b2mml: Path, tmp_path: Path) -> None:
    """Every element under a prefix (declared on the root) reads as with the default namespace."""
    for prefix in ("lots", "schedule", "performance"):
        source = next(f for f in sorted(tiny_b2mml.iterdir()) if f.name.startswith(prefix))
        text = re.sub(r"<(/?)([A-Za-z])", r"<\1b2:\2", source.read_text())
        text = text.replace(' xmlns="', ' xmlns:b2="', 1)
        target = tmp_path / source.name
        target.write_text(text)
        assert _taken([target]) == [target]
        _same_with_and_without([target])


def test_whole_import_is_the_same(tiny_b2mml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same store and report with the compiled reader and without it."""
    out = []
    for switch in ("1", "0"):
        monkeypatch.setenv("PLANTGRAPH_B2MML_NATIVE", switch)
        store = open_store("embedded", tmp_path / f"store-{switch}")
        try:
            rep = import_b2mml([tiny_b2mml], store)
            assert rep.written and rep.entities > 0
            out.append((rep.model_dump(exclude={"seconds"}), _snapshot(store)))
        finally:
            store.close()
    assert out[0] == out[1]


#: Pieces a random edit inserts: markup the reader must refuse or read as lxml does.
_PIECES = [b"&amp;", b"&lt;", b"&#65;", b"&#x41;", b"&#0;", b"&#xD800;", b"&#xFFFE;", b"&foo;", b"&", b"<!-- c -->",
           b"<!-- a -- b -->", b"<?pi x?>", b"<![CDATA[x]]>", b"]]>", b" ", b"\t", b"\n", b"<b:x xmlns:b='u'/>",
           b"<x/>", b"</x>", b"<ID>a</ID>", b" a='1'", b" xmlns:p=''", b" xmlns='urn:x'", b"p:", b"<", b">", b"'",
           b"=", b"\xc3\xa9", b"\xff", b"\r", b"\x01", b"  ", b"encodin"]


def test_random_edits_map_alike(tiny_b2mml: Path, tmp_path: Path) -> None:
    """Seeded random edits of generated messages (pieces inserted, bytes dropped or repeated):
    whatever the compiled reader takes, it reads as the Python readers do."""
    rng = random.Random(11)
    sources = [f for f in sorted(tiny_b2mml.iterdir()) if f.name.startswith(("performance", "schedule", "lots"))]
    taken = 0
    for case in range(300):
        data = bytearray(rng.choice(sources).read_bytes())
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(data))
            j = min(len(data), i + rng.randint(1, 12))
            if rng.random() < 0.5:
                data[i:i] = rng.choice(_PIECES)
            elif rng.random() < 0.5:
                del data[i:j]
            else:
                data[i:i] = data[i:j]
        target = tmp_path / f"edit-{case}.xml"
        target.write_bytes(bytes(data))
        taken += N.map_bytes(bytes(data)) is not None
        _same_with_and_without([target])
    assert 20 < taken < 280  # both kinds of files were among them
