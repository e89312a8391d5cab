"""Entity linking: which entities of the graph a question talks about.

Order of evidence, strongest first: an exact id (checked in the store, so an id is never
invented), an id written short ("lot 1571", "LOT-1571" for ``LOT-0001571``: the class word or
prefix plus the number, expanded with the id scheme learned from the store and then checked there
too), an exact name or alias, a fuzzy name or alias (typos; rapidfuzz), and, only when the
caller asks for it, embedding similarity of the question to entity cards. A mention that fits
several entities equally well is reported as ambiguous with its candidates, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from ontology.models import ENTITY_CLASSES
from reasoning.rag.cards import CARD_CLASSES
from reasoning.rag.models import LinkResult, Mention
from store.base import GraphStore

#: Classes whose names and aliases are in the linking dictionary; everything else links by id.
NAMED_CLASSES: tuple[str, ...] = tuple(c for c in CARD_CLASSES if c not in ("DowntimeEvent",))

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-./:#]*[A-Za-z0-9]|[A-Za-z0-9]")
_STOP = frozenset(re.split(r"\s+", """
    a an the of on in at for to from by with and or is are was were be been which what who whom
    whose why how when where did does do has have had this that these those it its any all our my
    me show tell list give find trace impact affected affect lot lots order orders machine line
    customer customers supplier week night today yesterday last next days hours shift sop version
    incident hold plant happened happen risk deliveries delivery about please
    """.strip())
)
FUZZY_CUTOFF = 86.0
FUZZY_MIN_CHARS = 5
AMBIGUITY_MARGIN = 2.0


#: Extra words (besides the split class name and the id prefix) that name a class before a number.
ID_WORDS: dict[str, tuple[str, ...]] = {
    "Lot": ("batch",),
    "ProductionOrder": ("work order", "manufacturing order", "order"),
    "SalesOrder": ("order",),
    "PurchaseOrder": ("order",),
    "MaintenanceOrder": ("order",),
    "SalesOrderLine": ("order line",),
    "QualityHold": ("hold",),
    "DowntimeEvent": ("downtime",),
}
_SIMPLE_ID = re.compile(r"^([A-Za-z]+)([-_]?)(\d+)$")
_SAMPLE_IDS = 3


def _class_words(cls: str) -> list[str]:
    return [" ".join(w.lower() for w in re.findall(r"[A-Z][a-z]*", cls))]


@dataclass(frozen=True, slots=True)
class IdScheme:
    """How a class writes its ids when they are a prefix plus a number (``LOT-`` + 7 digits);
    learned from a few stored ids, so a plant with other conventions just has other schemes."""

    cls: str
    prefix: str
    widths: tuple[int, ...]

    def candidates(self, digits: str) -> list[str]:
        """The ids a short number may stand for: as written and zero-padded to the learned widths."""
        number = digits.lstrip("0") or "0"
        out = [self.prefix + number.zfill(w) for w in self.widths if w >= len(number)]
        out.append(self.prefix + digits)
        return list(dict.fromkeys(out))


def learn_id_schemes(store: GraphStore, classes: Iterable[str] = ENTITY_CLASSES) -> dict[str, IdScheme]:
    """One scheme per class whose first stored ids all read ``PREFIX-digits`` with one prefix."""
    schemes: dict[str, IdScheme] = {}
    for cls in classes:
        parsed = [_SIMPLE_ID.match(n.id) for n in store.find_nodes(cls=cls, limit=_SAMPLE_IDS)]
        if not parsed or any(m is None for m in parsed):
            continue
        prefixes = {m.group(1) + m.group(2) for m in parsed if m is not None}
        if len(prefixes) != 1:
            continue
        widths = tuple(sorted({len(m.group(3)) for m in parsed if m is not None}))
        schemes[cls] = IdScheme(cls, prefixes.pop(), widths)
    return schemes


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    cls: str
    plant: str | None
    method: str  # "name" or "alias"


class EntityLinker:
    """Links mentions in a question to entity ids; built from the store's named classes."""

    def __init__(self, store: GraphStore, classes: Sequence[str] = NAMED_CLASSES) -> None:
        self.store = store
        self.classes = tuple(classes)
        self._dict: dict[str, list[_Entry]] = {}
        self._keys: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read names and aliases (call after the graph changed)."""
        d: dict[str, list[_Entry]] = {}
        for cls in self.classes:
            for node in self.store.find_nodes(cls=cls):
                names: list[tuple[str, str]] = []
                if node.name:
                    names.append((node.name, "name"))
                if cls == "SOP" and node.props.get("title"):
                    names.append((str(node.props["title"]), "name"))
                aliases = node.props.get("aliases") or []
                if isinstance(aliases, list):
                    names.extend((str(a), "alias") for a in aliases)
                for text, method in names:
                    key = normalise(text)
                    if not key:
                        continue
                    entries = d.setdefault(key, [])
                    if all(e.id != node.id for e in entries):
                        entries.append(_Entry(node.id, cls, node.plant, method))
        self._dict = d
        self._keys = list(d)
        self._by_length: dict[int, list[str]] = {}
        self._learn_short_ids()

    def _fuzzy_choices(self, length: int) -> list[str]:
        """The keys that can reach FUZZY_CUTOFF against a text of ``length`` characters, in
        dictionary order (so ties among equal scores resolve as over the whole list).

        ``fuzz.ratio`` is 100 * (1 - indel distance / (la + lb)) and the distance is at least
        |la - lb|, so a key whose length is too far off cannot match; at 1M entities (16k keys)
        this cuts a fuzzy lookup from ~1.7 ms to ~0.2-0.6 ms."""
        got = self._by_length.get(length)
        if got is None:
            slack = (100.0 - FUZZY_CUTOFF) / 100.0
            lo, hi = length * (1 - slack) / (1 + slack), length * (1 + slack) / (1 - slack)
            got = [k for k in self._keys if lo - 1 <= len(k) <= hi + 1]
            self._by_length[length] = got
        return got

    def _learn_short_ids(self) -> None:
        """The id schemes and the words that may precede a short id ("lot", "order", "LOT")."""
        self.schemes = learn_id_schemes(self.store)
        words: dict[str, list[str]] = {}
        for cls, scheme in self.schemes.items():
            for w in [*_class_words(cls), *ID_WORDS.get(cls, ()), scheme.prefix.rstrip("-_").lower()]:
                if cls not in words.setdefault(w, []):
                    words[w].append(cls)
        self._word_classes = words
        self._prefix_classes: dict[str, list[str]] = {}
        for cls, scheme in self.schemes.items():
            self._prefix_classes.setdefault(scheme.prefix.rstrip("-_").lower(), []).append(cls)
        alternatives = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))
        self._short_rx = re.compile(
            rf"\b({alternatives})\s*(?:(?:no\.?|number|nr\.?|#)\s*)?#?(\d+)\b", re.I) if words else None

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _visible(plant: str | None, scope: Sequence[str] | None) -> bool:
        return scope is None or plant is None or plant in scope

    def _entries(self, key: str, scope: Sequence[str] | None) -> list[_Entry]:
        return [e for e in self._dict.get(key, []) if self._visible(e.plant, scope)]

    # -- linking ------------------------------------------------------------------------------
    def link(self, question: str, plant_scope: Sequence[str] | None = None) -> LinkResult:
        result = LinkResult()
        taken: list[tuple[int, int]] = []
        short = self._link_ids(question, plant_scope, result, taken)
        self._link_short_ids(question, plant_scope, result, taken, short)
        tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(question)]
        self._link_names(question, tokens, plant_scope, result, taken, fuzzy=False)
        self._link_names(question, tokens, plant_scope, result, taken, fuzzy=True)
        self._resolve_with_plants(result)
        result.linked.sort(key=lambda m: m.start)
        result.ambiguous.sort(key=lambda m: m.start)
        return result

    def _link_ids(self, question: str, scope: Sequence[str] | None, result: LinkResult,
                  taken: list[tuple[int, int]]) -> list[tuple[str, int, int]]:
        """Exact ids; returns the unknown id-like tokens that may be short ids ("LOT-1571")."""
        short: list[tuple[str, int, int]] = []
        cands: list[tuple[str, int, int]] = []
        for m in _TOKEN.finditer(question):
            tok = m.group(0).rstrip(".:/#")
            if any(ch.isdigit() for ch in tok) or "-" in tok or "_" in tok:
                cands.append((tok, m.start(), m.start() + len(tok)))
        if not cands:
            return short
        variants = {v for tok, _, _ in cands for v in (tok, tok.upper())}
        classes = self.store.node_classes(variants)
        hits = [(tok if tok in classes else tok.upper(), s, e) for tok, s, e in cands
                if tok in classes or tok.upper() in classes]
        nodes = self.store.get_nodes([h for h, _, _ in hits])
        for tok, s, e in cands:
            node_id = tok if tok in classes else tok.upper() if tok.upper() in classes else None
            node = nodes.get(node_id) if node_id else None
            if node_id is None and _SIMPLE_ID.match(tok):
                short.append((tok, s, e))
                continue
            if node_id is None or (node is not None and not self._visible(node.plant, scope)):
                if any(ch.isdigit() for ch in tok) and re.search(r"[A-Za-z]", tok):
                    result.not_found.append(tok)
                continue
            if any(m.ids == [node_id] for m in result.linked):
                taken.append((s, e))
                continue
            result.linked.append(Mention(text=question[s:e], start=s, end=e, method="id",
                                         ids=[node_id], classes=[classes[node_id]]))
            taken.append((s, e))
        return short

    def _link_short_ids(self, question: str, scope: Sequence[str] | None, result: LinkResult,
                        taken: list[tuple[int, int]], tokens: list[tuple[str, int, int]]) -> None:
        """Ids written without their prefix or padding: "lot 1571", "order #88", "LOT-1571".

        Every candidate is checked in the store; one hit links, several (e.g. "order 88" when a
        production and a sales order both have that number) are reported as ambiguous, none is
        reported as not found."""
        found: list[tuple[str, int, int, list[str]]] = []
        for tok, s, e in tokens:
            m = _SIMPLE_ID.match(tok)
            assert m is not None
            classes = self._prefix_classes.get(m.group(1).lower(), [])
            found.append((tok, s, e, [c for cls in classes for c in self.schemes[cls].candidates(m.group(3))]))
        if self._short_rx is not None:
            for m in self._short_rx.finditer(question):
                s, e = m.start(), m.end()
                if any(s < te and ts < e for ts, te in taken):
                    continue
                classes = self._word_classes.get(" ".join(m.group(1).lower().split()), [])
                found.append((m.group(0), s, e,
                              [c for cls in classes for c in self.schemes[cls].candidates(m.group(2))]))
        if not found:
            return
        existing = self.store.node_classes({c for *_, cands in found for c in cands})
        nodes = self.store.get_nodes(list(existing))
        for text, s, e, cands in found:
            if any(s < te and ts < e for ts, te in taken):
                continue
            ids = sorted({c for c in cands if c in existing and c in nodes
                          and self._visible(nodes[c].plant, scope)})
            if not ids:
                result.not_found.append(text)
                continue
            if len(ids) == 1 and any(mm.ids == ids for mm in result.linked):
                taken.append((s, e))
                continue
            mention = Mention(text=text, start=s, end=e, method="id", ids=ids, classes=[existing[i] for i in ids])
            (result.ambiguous if mention.ambiguous else result.linked).append(mention)
            taken.append((s, e))

    def _link_names(self, question: str, tokens: list[tuple[str, int, int]], scope: Sequence[str] | None,
                    result: LinkResult, taken: list[tuple[int, int]], fuzzy: bool) -> None:
        found: list[tuple[float, int, int, list[_Entry], str, list[tuple[str, float]]]] = []
        n = len(tokens)
        # per token, computed once (a question listing 30 lot ids has ~400 windows per pass):
        # is it inside an already linked span, a stop word, does it hold a digit, its normalised
        # form (the normalised window is the normalised tokens joined, as only non-alphanumeric
        # characters lie between tokens)
        covered = [any(ts_ < te and ts < te_ for ts, te in taken) for _, ts_, te_ in tokens]
        stop = [t[0].lower() in _STOP for t in tokens]
        digit = [any(ch.isdigit() for ch in t[0]) for t in tokens]
        norm = [normalise(t[0]) for t in tokens]
        covered_before = [0]
        digits_before = [0]
        for i in range(n):
            covered_before.append(covered_before[-1] + covered[i])
            digits_before.append(digits_before[-1] + digit[i])
        for size in range(min(6, n), 0, -1):
            for i in range(n - size + 1):
                j = i + size
                if covered_before[j] != covered_before[i]:
                    continue
                if all(stop[i:j]) or (fuzzy and stop[i]):
                    continue
                if fuzzy and digits_before[j] != digits_before[i]:
                    continue
                s, e = tokens[i][1], tokens[j - 1][2]
                key = " ".join(x for x in norm[i:j] if x)
                if not key:
                    continue
                if not fuzzy:
                    entries = self._entries(key, scope)
                    if entries:
                        found.append((100.0 + size, s, e, entries, entries[0].method, [(key, 100.0)]))
                    continue
                if len(key) < FUZZY_MIN_CHARS:
                    continue
                matches = process.extract(key, self._fuzzy_choices(len(key)), scorer=fuzz.ratio,
                                          score_cutoff=FUZZY_CUTOFF, limit=4)
                scored = [(k, float(sc)) for k, sc, _ in matches if self._entries(k, scope)]
                if scored:
                    best = scored[0][1]
                    close = [(k, sc) for k, sc in scored if best - sc <= AMBIGUITY_MARGIN]
                    entries = [x for k, _ in close for x in self._entries(k, scope)]
                    found.append((best, s, e, entries, "fuzzy", close))
        # greedy: best score first, longer spans first, no overlaps
        found.sort(key=lambda f: (-f[0], -(f[2] - f[1]), f[1]))
        for score, s, e, entries, method, _keys in found:
            if any(s < te and ts < e for ts, te in taken):
                continue
            uniq: dict[str, _Entry] = {}
            for x in entries:
                uniq.setdefault(x.id, x)
            mention = Mention(
                text=question[s:e], start=s, end=e,
                method="fuzzy" if method == "fuzzy" else ("alias" if method == "alias" else "name"),
                ids=sorted(uniq), classes=[uniq[i].cls for i in sorted(uniq)],
                score=round(min(score, 100.0) / 100.0, 3),
            )
            (result.ambiguous if mention.ambiguous else result.linked).append(mention)
            taken.append((s, e))

    def _resolve_with_plants(self, result: LinkResult) -> None:
        """An ambiguous mention whose candidates differ by plant is resolved when the question
        also names exactly one of those plants."""
        plants = set(result.ids_of("Site"))
        if not plants or not result.ambiguous:
            return
        still: list[Mention] = []
        for m in result.ambiguous:
            nodes = self.store.get_nodes(m.ids)
            keep = [i for i in m.ids if i in nodes and nodes[i].plant in plants]
            if len(keep) == 1:
                idx = m.ids.index(keep[0])
                result.linked.append(m.model_copy(update={"ids": keep, "classes": [m.classes[idx]]}))
            else:
                still.append(m)
        result.ambiguous = still

    def names(self) -> Iterable[str]:
        return self._keys
