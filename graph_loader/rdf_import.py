"""RDF (Turtle, N-Triples, JSON-LD) that uses the plantgraph ontology -> the store.

The file is parsed with rdflib, checked with the ontology's SHACL shapes (pyshacl) before
anything else, turned into records with :func:`ontology.rdf.records_from_graph`, validated with
the ontology models and the bundle rules, and written all or nothing. Each SHACL violation is
reported with its focus node and path. JSON-LD documents may not load remote ``@context``s
(nothing here touches the network).
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import RDF

from graph_loader.b2mml.importer import ImportReport
from graph_loader.b2mml.records import ImportBatch, Origin, Problem, write_validated
from store.base import GraphStore

SH = Namespace("http://www.w3.org/ns/shacl#")
ONTOLOGY_DIR = Path(__file__).resolve().parents[1] / "ontology"
FORMATS = {".ttl": "turtle", ".turtle": "turtle", ".nt": "nt", ".ntriples": "nt", ".jsonld": "json-ld",
           ".json": "json-ld"}
_FORMAT_NAMES = {"turtle": "turtle", "ttl": "turtle", "nt": "nt", "n-triples": "nt", "ntriples": "nt",
                 "json-ld": "json-ld", "jsonld": "json-ld"}


class RdfImportReport(ImportReport):
    kind: str = "rdf"
    triples: int = 0
    shacl_violations: list[Problem] = Field(default_factory=list)


@lru_cache(maxsize=1)
def shapes_graph() -> Graph:
    return Graph().parse(ONTOLOGY_DIR / "shapes.ttl", format="turtle")


def _remote_contexts(obj: Any) -> list[str]:
    """Every ``@context`` given as a URL (a remote context would be fetched over the network)."""
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "@context":
                for c in v if isinstance(v, list) else [v]:
                    if isinstance(c, str):
                        out.append(c)
            out.extend(_remote_contexts(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_remote_contexts(v))
    return out


def _parse(path: Path, fmt: str) -> Graph:
    g = Graph()
    if fmt == "json-ld":
        text = path.read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _ParseError(exc.lineno, exc.colno, f"not valid JSON: {exc.msg}") from None
        remote = _remote_contexts(doc)
        if remote:
            raise _ParseError(0, 0, f"remote JSON-LD @context {remote[0]!r} refused (no network access); "
                                    "inline the context")
        g.parse(data=text, format="json-ld")
        return g
    try:
        g.parse(path, format=fmt)
    except Exception as exc:  # rdflib raises BadSyntax and several others for broken files
        msg = str(exc)
        m = re.search(r"line (\d+)", msg)
        raise _ParseError(int(m.group(1)) if m else 0, 0, f"not valid {fmt}: {msg.strip().splitlines()[0]}") from None
    return g


class _ParseError(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        self.line, self.column = line, column
        super().__init__(message)


def shacl_violations(g: Graph, file: str, limit: int = 500) -> list[Problem]:
    """Each SHACL result (violation) with its focus node and path."""
    from pyshacl import validate

    conforms, results, _ = validate(g, shacl_graph=shapes_graph(), inference="none", advanced=False)
    if conforms:
        return []
    assert isinstance(results, Graph)
    out: list[Problem] = []
    for res in sorted(results.subjects(RDF.type, SH.ValidationResult), key=str):
        focus = results.value(res, SH.focusNode)
        path = results.value(res, SH.resultPath)
        msg = results.value(res, SH.resultMessage)
        value = results.value(res, SH.value)
        comp = results.value(res, SH.sourceConstraintComponent)
        text = str(msg) if msg is not None else str(comp)
        if value is not None:
            text += f" (value {value})"
        out.append(Problem(file=file, path=f"focus <{focus}> path <{path}>", message=f"SHACL: {text}"))
        if len(out) >= limit:
            break
    out.sort(key=lambda p: (p.path, p.message))
    return out


def import_rdf(path: Path, store: GraphStore | None, fmt: str | None = None, dry_run: bool = False,
               source_system: str = "RDF") -> RdfImportReport:
    """Import an RDF file (all or nothing); SHACL violations block the import."""
    t0 = time.perf_counter()
    file = str(path)
    rep = RdfImportReport(dry_run=dry_run)
    if fmt is not None:
        rdf_fmt = _FORMAT_NAMES.get(fmt.lower())
        if rdf_fmt is None:
            rep.errors.append(Problem(file=file, message=f"unknown RDF format {fmt!r}; expected turtle, nt or json-ld"))
            return rep
    else:
        rdf_fmt = FORMATS.get(path.suffix.lower(), "turtle")
    try:
        g = _parse(path, rdf_fmt)
    except _ParseError as exc:
        rep.errors.append(Problem(file=file, line=exc.line, column=str(exc.column) if exc.column else None,
                                  message=str(exc)))
        return rep
    except OSError as exc:
        rep.errors.append(Problem(file=file, message=f"cannot read: {exc.strerror or exc}"))
        return rep
    rep.triples = len(g)
    rep.shacl_violations = shacl_violations(g, file)
    if rep.shacl_violations:
        rep.errors = list(rep.shacl_violations)
        rep.seconds = time.perf_counter() - t0
        return rep

    from ontology.rdf import entity_iri, records_from_graph

    nodes, edges = records_from_graph(g)
    batch = ImportBatch(source_system=source_system)
    for row in nodes:
        cls, nid = row.pop("cls"), row.pop("id")
        batch.add_node(cls, nid, Origin(file, 0, f"<{entity_iri(nid)}>"), props=row)
    for row in edges:
        rel, src, dst = row.pop("rel"), row.pop("src"), row.pop("dst")
        batch.add_edge(src, rel, dst, Origin(file, 0, f"<{entity_iri(src)}> {rel} <{entity_iri(dst)}>"), props=row)
    typed = {str(s) for s in g.subjects(RDF.type, None) if isinstance(s, URIRef)}
    known = {str(entity_iri(n)) for n in batch.nodes}
    for s in sorted(typed - known):
        if "/edge/" not in s:
            rep.unmapped.append(Problem(file=file, path=f"<{s}>", message="typed resource outside the plantgraph "
                                                                          "ontology: not imported"))
    validated = batch.validate(store)
    rep.errors = validated.errors
    rep.more_errors = validated.more_errors
    rep.entities, rep.relations = validated.node_count, validated.edge_count
    rep.entities_by_class = validated.entities_by_class()
    rep.relations_by_type = validated.relations_by_type()
    if not rep.errors and not dry_run and store is not None:
        write_validated(store, validated)
        rep.written = True
    rep.seconds = time.perf_counter() - t0
    return rep


__all__ = ["RdfImportReport", "import_rdf", "shacl_violations", "shapes_graph"]
