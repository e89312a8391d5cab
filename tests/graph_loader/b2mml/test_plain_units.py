"""The readers of plain-shaped units (``importer._PLAIN``) and messages (``_plain_message``) do
exactly what the general walk and the noun handlers do, in the same order: every file below is
mapped twice by a recording importer, with the readers and without them, and what each recorded
(calls, problems, file summaries) is compared. The perturbed messages are plain ones with one
thing changed that a reader must not take (or must take the same way)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from graph_loader.b2mml import importer
from graph_loader.b2mml.importer import B2MMLImporter, iter_b2mml_files
from graph_loader.b2mml.parallel import MappedChunk, recording_importer, take_recorded

from .conftest import FIXTURES, perturbed


def _recorded(files: list[Path], plain: bool) -> MappedChunk:
    """What mapping ``files`` records, with the plain readers (units and whole messages) or
    with the general walk and the noun handlers alone (the compiled reader off either way: its
    own tests compare it with these readers)."""
    imp = recording_importer(B2MMLImporter, "B2MML", UTC, native=False)
    saved = importer._PLAIN
    if not plain:
        importer._PLAIN = {}
        imp._plain_message = lambda root: False
    try:
        for f in files:
            imp.add_file(f)
        return take_recorded(imp)
    finally:
        importer._PLAIN = saved


@pytest.fixture
def taken() -> Iterator[Counter[tuple[str, bool]]]:
    """Readers that count what they took (True) and left to the handler (False), by noun."""
    counts: Counter[tuple[str, bool]] = Counter()

    def counting(noun: str, read: Callable[[B2MMLImporter, Any], bool]) -> Callable[[B2MMLImporter, Any], bool]:
        def run(imp: B2MMLImporter, el: Any) -> bool:
            ok = read(imp, el)
            counts[(noun, ok)] += 1
            return ok
        return run

    saved = importer._PLAIN
    importer._PLAIN = {noun: counting(noun, read) for noun, read in saved.items()}
    try:
        yield counts
    finally:
        importer._PLAIN = saved


def _same_with_and_without(files: list[Path]) -> None:
    with_readers = _recorded(files, plain=True)
    without = _recorded(files, plain=False)
    for name in MappedChunk.__slots__:
        assert getattr(with_readers, name) == getattr(without, name), name


def test_fixtures_map_alike(taken: Counter[tuple[str, bool]]) -> None:
    files = iter_b2mml_files([FIXTURES / d for d in ("messy", "v0401", "v0500", "v0600", "v0701", "unsafe")])
    _same_with_and_without(files)
    # the fixtures hold both: units the readers take and units they leave to the handlers
    assert any(ok for (_, ok) in taken) and any(not ok for (_, ok) in taken)


def test_generated_plant_is_read_plainly_and_alike(tiny_b2mml: Path, taken: Counter[tuple[str, bool]]) -> None:
    files = iter_b2mml_files([tiny_b2mml])
    _same_with_and_without(files)
    by_noun = {noun: n for (noun, ok), n in taken.items() if ok}
    assert {"MaterialLot", "OperationsRequest", "OperationsResponse"} <= by_noun.keys()
    assert not [k for k in taken if not k[1]]  # every generated unit is plain


#: (file prefix, pattern, replacement): one change each to a generated message.
PERTURBATIONS = [
    # responses
    ("performance", r"<MaterialActual>", '<MaterialActual><v:Extra xmlns:v="urn:v">x</v:Extra>'),
    ("performance", r"<ID>RESP-", "<ID>again</ID><ID>RESP-"),
    ("performance", r"<ID>RESP-[^<]*</ID>", "<ID> </ID>"),
    ("performance", r"<QuantityString>[^<]*</QuantityString>", ""),
    ("performance", r"<QuantityString>[^<]*</QuantityString>", "<QuantityString>12,5x</QuantityString>"),
    ("performance", r"<QuantityString>([^<]*)</QuantityString>", r"<QuantityString> \1E0 </QuantityString>"),
    ("performance", r"<ActualStartTime>[^<]*</ActualStartTime>", "<ActualStartTime>yesterday</ActualStartTime>"),
    ("performance", r"<ActualStartTime>[^<]*</ActualStartTime>", ""),
    ("performance", r"</SegmentResponse>", "<SegmentResponse><ID>N</ID></SegmentResponse></SegmentResponse>"),
    ("performance", r"<MaterialUse>Consumed</MaterialUse>", "<MaterialUse>Scrapped</MaterialUse>"),
    ("performance", r"<MaterialUse>Consumed</MaterialUse>", "<MaterialUse>consumed </MaterialUse>"),
    ("performance", r"<MaterialLotID>[^<]*</MaterialLotID>", ""),
    ("performance", r"<MaterialLotID>", "<MaterialSubLotID>S-1</MaterialSubLotID><MaterialLotID>"),
    ("performance", r"<ResponseState>[^<]*</ResponseState>", "<ResponseState>Whatever</ResponseState>"),
    ("performance", r"<OperationsType>Production</OperationsType>\s*<OperationsRequestID>",
     "<OperationsType>Maintenance</OperationsType><OperationsRequestID>"),
    ("performance", r"<OperationsRequestID>", "<ProductionRequestID>P-1</ProductionRequestID><OperationsRequestID>"),
    ("performance", r"<PersonID>", "<PersonID>P-X</PersonID><Description><b>x</b></Description><PersonID>"),
    ("performance", r"SyncOperationsPerformance", "CancelOperationsPerformance"),
    ("performance", r"SyncOperationsPerformance", "GetOperationsPerformance"),
    ("performance", r"<EquipmentActual>", "<EquipmentActual><EquipmentLevel>WorkCell</EquipmentLevel>"),
    ("performance", r"<OperationsPerformance>", "<OperationsPerformance><HierarchyScope><EquipmentID>SITE-X"
     "</EquipmentID><EquipmentLevel>Site</EquipmentLevel></HierarchyScope>"),
    # requests
    ("schedule", r"<MaterialUse>Produced</MaterialUse>", "<MaterialUse>Consumed</MaterialUse>"),
    ("schedule", r"<OperationsSegmentID>[^<]*</OperationsSegmentID>",
     "<OperationsSegmentID>other</OperationsSegmentID>"),
    ("schedule", r"<RequestState>[^<]*</RequestState>", "<RequestState>Nope</RequestState>"),
    ("schedule", r"<RequestState>", "<Priority>1</Priority><RequestState>"),
    ("schedule", r"<StartTime>[^<]*</StartTime>", ""),
    ("schedule", r"<PublishedDate>[^<]*</PublishedDate>", "<PublishedDate>later</PublishedDate>"),
    ("schedule", r"<MaterialDefinitionID>", "<MaterialLotID>L-9</MaterialLotID><MaterialDefinitionID>"),
    ("schedule", r"</SegmentRequirement>", "</SegmentRequirement><SegmentRequirement><ID>2</ID><MaterialRequirement>"
     "<MaterialDefinitionID>MAT-OTHER</MaterialDefinitionID><MaterialUse>Produced</MaterialUse>"
     "</MaterialRequirement></SegmentRequirement>"),
    ("schedule", r"<Description>", "<EffectiveStartDate>2026-01-01</EffectiveStartDate><Description>"),
    ("schedule", r"<EquipmentID>LINE", "<EquipmentID>M-NOT-A-LINE</EquipmentID><EquipmentID>LINE"),
    # lots
    ("lots", r"<Status>[^<]*</Status>", "<Status>Frozen</Status>"),
    ("lots", r"<Status>[^<]*</Status>", "<Status> </Status>"),
    ("lots", r"<ID>expiry</ID>", "<ID>colour</ID>"),
    ("lots", r"<ValueString>[^<]*</ValueString>", "<ValueString>soon</ValueString>"),
    ("lots", r"<Value>\s*<ValueString>([^<]*)</ValueString>\s*</Value>", r"<Value>\1</Value>"),
    ("lots", r"<EquipmentLevel>Site</EquipmentLevel>", "<EquipmentLevel>Galaxy</EquipmentLevel>"),
    ("lots", r"<EquipmentLevel>Site</EquipmentLevel>", "<EquipmentLevel>Area</EquipmentLevel>"),
    ("lots", r"<MaterialDefinitionID>", "<MaterialLotID>L-0</MaterialLotID><MaterialDefinitionID>"),
    ("lots", r"<AssemblyLot>\s*<ID>([^<]*)</ID>\s*<Quantity>.*?</Quantity>", r"<AssemblyLot><ID>\1</ID>"),
    ("lots", r"<AssemblyLot>\s*<ID>([^<]*)</ID>", r"<AssemblyLot><ID>\1</ID><MaterialDefinitionID>MAT-C"
     r"</MaterialDefinitionID>"),
    ("lots", r"<AssemblyLot>", "<AssemblySubLot><ID>SUB-1</ID></AssemblySubLot><AssemblyLot>"),
    ("lots", r"<MaterialLot>", '<MaterialLot xmlns:v="urn:v" v:flag="1">'),
    ("lots", r"<Quantity>", "<Quantity><DataType>decimal</DataType>"),
    # the message around the units
    ("lots", r"<LogicalID>[^<]*</LogicalID>", "<LogicalID> </LogicalID><LogicalID>ERP-2</LogicalID>"),
    ("lots", r"<LogicalID>[^<]*</LogicalID>", "<LogicalID><ValueString>X</ValueString></LogicalID>"),
    ("lots", r"<CreationDateTime>", '<v:Note xmlns:v="urn:v">hi</v:Note><CreationDateTime>'),
    ("lots", r"<Sync/>", "<Sync><Note>n</Note></Sync>"),
    ("lots", r"<Sync/>", "<Sync/><Remark>r</Remark>"),
    ("lots", r"<Sync/>", "<Get/>"),
    ("lots", r"<SyncMaterialLot ", "<SyncMaterialLot xmlns:b='http://www.mesa.org/xml/B2MML' "),
    ("lots", r"(<SyncMaterialLot[^>]*>)(.*)(</SyncMaterialLot>)", r"<Envelope>\1\2\3</Envelope>"),
    ("lots", r"<SyncMaterialLot ([^>]*)>(.*)</SyncMaterialLot>", r"<MaterialInformation \1>\2</MaterialInformation>"),
    ("lots", r"</ApplicationArea>", "<Sender><LogicalID>SECOND</LogicalID></Sender></ApplicationArea>"),
    ("schedule", r"<OperationsType>Production</OperationsType>\s*<OperationsRequest>",
     "<OperationsType>Production</OperationsType><Priority>2</Priority><OperationsRequest>"),
    ("schedule", r"<HierarchyScope>", "<HierarchyScope><Equipment><ID>E-9</ID></Equipment>"),
    ("schedule", r"<PublishedDate>", '<PublishedDate xmlns="urn:other">'),
    ("performance", r"<DataArea>", "<DataArea><OperationsPerformance><ID>EMPTY</ID></OperationsPerformance>"),
    ("performance", r"http://www.mesa.org/xml/B2MML", "http://www.wbf.org/xml/B2MML-V0401"),
]


@pytest.mark.parametrize("prefix,pattern,repl", PERTURBATIONS)
def test_perturbed_messages_map_alike(tiny_b2mml: Path, tmp_path: Path, prefix: str, pattern: str,
                                      repl: str) -> None:
    _same_with_and_without([perturbed(tiny_b2mml, tmp_path, prefix, pattern, repl)])
