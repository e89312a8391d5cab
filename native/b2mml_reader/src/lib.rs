//! A compiled twin of the importer's plain readers (graph_loader/b2mml/importer.py, `_plain_*`).
//!
//! Why: parsing and walking the tree from Python is most of a big B2MML import's CPU. This reads
//! a file, and when it is one message in the usual envelope whose every unit is plain-shaped
//! (the same test as the Python readers), `map_file` reads what those readers read, then maps it
//! as the importer's emitters would (`mapping`), handing back the calls for the importer to make;
//! where that mapping declines, it hands back what it read, as raw texts and line numbers, which
//! the importer converts and maps as usual; `map_files` does `map_file` for
//! many files on worker threads, ahead of the importing thread. For anything else they return
//! None and the importer reads the file with lxml, so this never has to report a problem: a file
//! is taken here only when it is certainly well-formed, plain XML.
//!
//! What it takes, on purpose narrower than XML: ASCII bytes (after an optional UTF-8 byte-order
//! mark) with no carriage returns or control characters; an XML declaration of exactly the
//! grammar's form, version 1.0, in UTF-8 or US-ASCII, or none; comments only outside the root
//! element; no CDATA section, processing instruction or DOCTYPE; names of letters, digits, `_`,
//! `.`, `-` with at most one prefix; attribute values without `<` or `&`; in text, only the five
//! predefined entities and character references to XML characters; fewer than 65,536 lines.
//!
//! The shapes (which children a plain element may have) come from Python (`configure`), so both
//! readers use one table.

mod mapping;

/// Files are read and mapped on worker threads while the importing thread makes Python objects
/// of the results, and the system allocator's locks and heap trimming cost those threads about
/// as much as the work itself (measured); mimalloc keeps a heap per thread.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use mapping::{MapConfig, Ops, Props, Val};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// local name -> (at most one, may have children), as Python's `plain.Shape.kids()`
type Shape = HashMap<String, (bool, bool)>;

/// A shape as the readers look it up: (local name, at most one, may have children).
struct ShapeRules(Vec<(String, bool, bool)>);

impl ShapeRules {
    fn rule(&self, local: &str) -> Option<(bool, bool)> {
        self.0
            .iter()
            .find(|(n, _, _)| n == local)
            .map(|&(_, one, nested)| (one, nested))
    }
}

const SHAPE_NAMES: [&str; 12] = [
    "RESPONSE",
    "SEGMENT_RESPONSE",
    "MATERIAL",
    "QUANTITY",
    "EQUIPMENT",
    "PERSONNEL",
    "REQUEST",
    "SEGMENT_REQUIREMENT",
    "LOT",
    "PROPERTY",
    "VALUE",
    "SCOPE",
];
const RESPONSE: usize = 0;
const SEGMENT_RESPONSE: usize = 1;
const MATERIAL: usize = 2;
const QUANTITY: usize = 3;
const EQUIPMENT: usize = 4;
const PERSONNEL: usize = 5;
const REQUEST: usize = 6;
const SEGMENT_REQUIREMENT: usize = 7;
const LOT: usize = 8;
const PROPERTY: usize = 9;
const VALUE: usize = 10;
const SCOPE: usize = 11;

struct Config {
    shapes: Vec<ShapeRules>,
    units: HashSet<String>,
    containers: HashSet<String>,
    context: HashSet<String>,
    verbs: Vec<String>,
}

impl Config {
    fn is_noun(&self, local: &str) -> bool {
        self.units.contains(local) || self.containers.contains(local)
    }

    /// `VERB_RE.match(local)`: a verb, then a capital letter and one or more word characters.
    fn verb_like(&self, local: &str) -> bool {
        self.verbs.iter().any(|v| {
            local.strip_prefix(v.as_str()).is_some_and(|rest| {
                let b = rest.as_bytes();
                b.len() >= 2
                    && b[0].is_ascii_uppercase()
                    && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            })
        })
    }
}

static CONFIG: RwLock<Option<Arc<Config>>> = RwLock::new(None);

// ------------------------------------------------------------------------------------------
// The tree
// ------------------------------------------------------------------------------------------

const NONE: u32 = u32::MAX;

/// An element's text before its first child (all of it for a leaf), as lxml's `.text`: a slice
/// of the file, or a copy once an entity reference splits it.
enum Text<'a> {
    Empty,
    Slice(&'a str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Empty => "",
            Text::Slice(s) => s,
            Text::Owned(s) => s,
        }
    }

    fn push(&mut self, more: &str) {
        match self {
            Text::Empty => *self = Text::Owned(more.to_owned()),
            Text::Slice(s) => *self = Text::Owned(format!("{s}{more}")),
            Text::Owned(s) => s.push_str(more),
        }
    }
}

struct Node<'a> {
    ns: u32,
    local: &'a str,
    line: u32,
    text: Text<'a>,
    parent: u32,
    first: u32,
    last: u32,
    next: u32,
}

struct Tree<'a> {
    nodes: Vec<Node<'a>>,
    namespaces: Vec<Vec<u8>>,
    root: u32,
}

/// The children of an element, in document order.
struct Kids<'t, 'a> {
    tree: &'t Tree<'a>,
    cur: u32,
}

impl Iterator for Kids<'_, '_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.cur == NONE {
            return None;
        }
        let i = self.cur;
        self.cur = self.tree.nodes[i as usize].next;
        Some(i)
    }
}

impl<'a> Tree<'a> {
    fn kids(&self, i: u32) -> Kids<'_, 'a> {
        Kids {
            tree: self,
            cur: self.nodes[i as usize].first,
        }
    }
}

/// Python's `str.isspace` on one character (what `str.split()` splits on).
fn py_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f' | ' ' | '\u{85}' | '\u{a0}'
        | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}'
        | '\u{3000}')
}

/// `plain.clean`: whitespace runs collapsed to one space, ends trimmed, None when empty.
fn clean(text: &str) -> Option<String> {
    let trimmed = text.trim_matches(py_space);
    if trimmed.is_empty() {
        return None;
    }
    if !trimmed.contains(|c: char| py_space(c) && c != ' ') && !trimmed.contains("  ") {
        return Some(trimmed.to_owned());
    }
    let mut out = String::with_capacity(trimmed.len());
    for part in trimmed.split(py_space).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    Some(out)
}

/// An XML name of the narrow kind taken here: `[A-Za-z_][A-Za-z0-9._-]*`, at most one prefix.
fn plain_name(name: &[u8]) -> bool {
    let part = |p: &[u8]| {
        !p.is_empty()
            && (p[0].is_ascii_alphabetic() || p[0] == b'_')
            && p.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    };
    match memchr::memchr(b':', name) {
        None => part(name),
        Some(i) => part(&name[..i]) && part(&name[i + 1..]),
    }
}

/// An XML 1.0 character (what a character reference may name).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The text of a file this reader takes, without its byte-order mark, and the offsets of its
/// line ends; None for any other file.
fn narrow_text(data: &[u8]) -> Option<(&str, Vec<u32>)> {
    let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    if body.len() >= u32::MAX as usize {
        return None;
    }
    // (no early exit: the compiler vectorises the whole pass)
    let odd = body.iter().fold(false, |acc, &b| {
        acc | (b >= 0x80) | (b < 0x20 && b != b'\n' && b != b'\t')
    });
    if odd {
        return None;
    }
    let ends: Vec<u32> = memchr::memchr_iter(b'\n', body).map(|i| i as u32).collect();
    if ends.len() >= 65_535 {
        return None; // (libxml2's line numbers are 16 bits unless asked otherwise)
    }
    // markup this reader leaves to lxml: CDATA, DOCTYPE; processing instructions but the XML
    // declaration at the very start (comments are checked where they are)
    for i in memchr::memchr_iter(b'<', body) {
        match body.get(i + 1) {
            Some(b'!') if body.get(i + 2..i + 4) != Some(b"--") => return None,
            Some(b'?') if i != 0 => return None,
            _ => {}
        }
    }
    Some((std::str::from_utf8(body).ok()?, ends))
}

/// `part` (a slice of `body` handed back by the XML reader) as a slice of `body` itself.
fn within<'a>(body: &'a str, part: &[u8]) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    body.get(start..start + part.len())
}

fn intern(namespaces: &mut Vec<Vec<u8>>, ns: &[u8]) -> u32 {
    if let Some(i) = namespaces.iter().position(|n| n == ns) {
        return i as u32;
    }
    namespaces.push(ns.to_vec());
    (namespaces.len() - 1) as u32
}

/// Whether an XML declaration (the text between `<?` and `?>`) is exactly of the grammar's form:
/// `xml`, then `version` of 1.0, an `encoding` this reader takes and a `standalone` of yes or no,
/// in that order, the last two optional (the XML reader does not check the declaration's form).
fn plain_declaration(raw: &[u8]) -> bool {
    let Some(mut rest) = raw.strip_prefix(b"xml") else {
        return false;
    };
    let space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n');
    let mut seen = 0usize; // how many of version, encoding, standalone may no longer come
    loop {
        let trimmed = rest
            .iter()
            .position(|c| !space(c))
            .map_or(&rest[rest.len()..], |i| &rest[i..]);
        if trimmed.is_empty() {
            return seen > 0; // (version is required)
        }
        if trimmed.len() == rest.len() {
            return false; // no space before a pseudo-attribute
        }
        let name_len = trimmed
            .iter()
            .position(|c| !c.is_ascii_lowercase())
            .unwrap_or(trimmed.len());
        let (name, after) = trimmed.split_at(name_len);
        let after = &after[after.iter().position(|c| !space(c)).unwrap_or(after.len())..];
        let Some(after) = after.strip_prefix(b"=") else {
            return false;
        };
        let after = &after[after.iter().position(|c| !space(c)).unwrap_or(after.len())..];
        let Some(&quote) = after.first() else { return false };
        if quote != b'"' && quote != b'\'' {
            return false;
        }
        let Some(end) = after[1..].iter().position(|c| *c == quote) else {
            return false;
        };
        let value = after[1..1 + end].to_ascii_lowercase();
        let (slot, ok) = match name {
            b"version" => (1, value == b"1.0"),
            b"encoding" => (
                2,
                matches!(value.as_slice(), b"utf-8" | b"utf8" | b"us-ascii" | b"ascii"),
            ),
            b"standalone" => (3, matches!(value.as_slice(), b"yes" | b"no")),
            _ => return false,
        };
        if !ok || slot <= seen || (seen == 0 && slot != 1) || (name == b"standalone" && value != after[1..1 + end]) {
            return false;
        }
        seen = slot;
        rest = &after[end + 2..];
    }
}

/// Whether a start tag's attributes are of the narrow kind (checked, bound, no `<` or `&`).
fn plain_attributes(reader: &NsReader<&[u8]>, e: &BytesStart) -> bool {
    let mut attrs = e.attributes();
    attrs.with_checks(true);
    for a in attrs {
        let Ok(a) = a else { return false };
        let key = a.key.as_ref();
        if !plain_name(key) || a.value.iter().any(|c| *c == b'<' || *c == b'&') {
            return false;
        }
        if let Some(prefix) = key.strip_suffix(a.key.local_name().as_ref()) {
            if prefix == b"xmlns:" {
                if a.value.is_empty() {
                    return false; // (undeclaring a prefix is XML 1.1)
                }
                continue;
            }
        }
        if key == b"xmlns" || key.starts_with(b"xml:") {
            continue;
        }
        if let (ResolveResult::Unknown(_), _) = reader.resolve_attribute(a.key) {
            return false;
        }
    }
    true
}

/// The element tree of a file of the narrow kind, else None.
fn parse(data: &[u8]) -> Option<Tree<'_>> {
    let (body, ends) = narrow_text(data)?;
    let mut reader = NsReader::from_reader(body.as_bytes());
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text_start = false;
        cfg.trim_text_end = false;
    }
    let mut tree = Tree {
        nodes: Vec::with_capacity(body.len() / 40),
        namespaces: vec![Vec::new()],
        root: NONE,
    };
    let mut cur = NONE; // the open element
    let mut line_ends = ends.iter().peekable();
    let mut line = 1u32;
    let mut first = true;
    loop {
        let (ns, event) = reader.read_resolved_event().ok()?;
        let nsid = match ns {
            ResolveResult::Bound(n) => intern(&mut tree.namespaces, n.as_ref()),
            ResolveResult::Unbound => 0,
            ResolveResult::Unknown(_) => return None,
        };
        // an element's line is that of the end of its start tag, as libxml2 counts
        let last = (reader.buffer_position() as u32).saturating_sub(1);
        while line_ends.next_if(|e| **e < last).is_some() {
            line += 1;
        }
        let was_first = first;
        first = false;
        match event {
            Event::Decl(d) => {
                if !was_first || !plain_declaration(d.as_ref()) {
                    return None;
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                if !plain_name(e.name().as_ref()) || !plain_attributes(&reader, e) {
                    return None;
                }
                if cur == NONE && tree.root != NONE {
                    return None; // a second root
                }
                let id = tree.nodes.len() as u32;
                let local = within(body, e.local_name().into_inner())?;
                tree.nodes.push(Node {
                    ns: nsid,
                    local,
                    line,
                    text: Text::Empty,
                    parent: cur,
                    first: NONE,
                    last: NONE,
                    next: NONE,
                });
                if cur == NONE {
                    tree.root = id;
                } else {
                    let p = &mut tree.nodes[cur as usize];
                    let prev = p.last;
                    p.last = id;
                    if prev == NONE {
                        p.first = id;
                    } else {
                        tree.nodes[prev as usize].next = id;
                    }
                }
                if matches!(event, Event::Start(_)) {
                    cur = id;
                }
            }
            Event::End(_) => {
                if cur == NONE {
                    return None;
                }
                cur = tree.nodes[cur as usize].parent;
            }
            Event::Text(t) => {
                let raw: &[u8] = t.as_ref();
                if cur == NONE {
                    if !raw.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n')) {
                        return None;
                    }
                } else {
                    if memchr::memmem::find(raw, b"]]>").is_some() {
                        return None;
                    }
                    let node = &mut tree.nodes[cur as usize];
                    if node.first == NONE {
                        let piece = within(body, raw)?;
                        match node.text {
                            Text::Empty => node.text = Text::Slice(piece),
                            _ => node.text.push(piece),
                        }
                    }
                }
            }
            Event::GeneralRef(r) => {
                if cur == NONE {
                    return None;
                }
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().ok()??
                } else {
                    match r.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        _ => return None,
                    }
                };
                if !xml_char(c) {
                    return None;
                }
                let node = &mut tree.nodes[cur as usize];
                if node.first == NONE {
                    node.text.push(c.encode_utf8(&mut [0u8; 4]));
                }
            }
            Event::Comment(_) if cur == NONE => {} // before or after the root: not part of any element
            Event::Eof => break,
            _ => return None,
        }
    }
    if cur != NONE || tree.root == NONE {
        return None;
    }
    Some(tree)
}

// ------------------------------------------------------------------------------------------
// Reading plain elements (the Python readers' logic, step for step)
// ------------------------------------------------------------------------------------------

/// Raised (as None) for anything not plain: the importer then reads the file with lxml.
struct NotPlain;
type Plain<T> = Result<T, NotPlain>;

/// An element's children by local name, checked against a shape (`plain.children`).
struct ByName<'a>(Vec<(&'a str, Vec<u32>)>);

impl ByName<'_> {
    fn get(&self, name: &str) -> &[u32] {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    fn has(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

struct Reader<'t, 'a> {
    tree: &'t Tree<'a>,
    cfg: &'t Config,
}

impl<'t, 'a> Reader<'t, 'a> {
    fn node(&self, i: u32) -> &'t Node<'a> {
        &self.tree.nodes[i as usize]
    }

    fn leaf(&self, i: u32) -> bool {
        self.node(i).first == NONE
    }

    fn children(&self, el: u32, shape: usize) -> Plain<ByName<'a>> {
        let shape = &self.cfg.shapes[shape];
        let parent = self.node(el);
        let mut out: Vec<(&'a str, Vec<u32>)> = Vec::new();
        for c in self.tree.kids(el) {
            let kid = self.node(c);
            if kid.ns != parent.ns {
                return Err(NotPlain);
            }
            let (one, nested) = shape.rule(kid.local).ok_or(NotPlain)?;
            if !nested && kid.first != NONE {
                return Err(NotPlain);
            }
            match out.iter_mut().find(|(n, _)| *n == kid.local) {
                None => out.push((kid.local, vec![c])),
                Some(_) if one => return Err(NotPlain),
                Some((_, v)) => v.push(c),
            }
        }
        Ok(ByName(out))
    }

    /// `plain.leaf_text`: the cleaned text of the first child of that name.
    fn leaf_text(&self, kids: &ByName, name: &str) -> Option<String> {
        kids.get(name).first().and_then(|&c| self.text(c))
    }

    fn text(&self, el: u32) -> Option<String> {
        clean(self.node(el).text.as_str())
    }

    fn texts(&self, els: &[u32]) -> Vec<String> {
        els.iter().filter_map(|&c| self.text(c)).collect()
    }

    fn path(&self, el: u32) -> String {
        let mut parts = Vec::new();
        let mut cur = el;
        while cur != NONE {
            let n = self.node(cur);
            parts.push(n.local);
            cur = n.parent;
        }
        parts.reverse();
        let mut out = String::new();
        for p in parts {
            out.push('/');
            out.push_str(p);
        }
        out
    }

    /// `_plain_context`: the element and everything in it in namespace `ns`, none a noun or a verb.
    fn plain_context(&self, el: u32, ns: u32) -> bool {
        let n = self.node(el);
        n.ns == ns
            && !self.cfg.is_noun(n.local)
            && !self.cfg.verb_like(n.local)
            && self.tree.kids(el).all(|k| self.plain_context(k, ns))
    }

    /// `_production_kids`: the children of a plain request or response of production operations.
    fn production_kids(&self, el: u32, shape: usize) -> Plain<ByName<'a>> {
        let top = self.children(el, shape)?;
        if let Some(ot) = self.leaf_text(&top, "OperationsType") {
            let ot = ot.to_lowercase();
            if ot != "production" && ot != "mixed" {
                return Err(NotPlain);
            }
        }
        Ok(top)
    }

    /// (QuantityString, UnitOfMeasure) of a plain element's one Quantity (`_plain_quantity`).
    fn quantity(&self, kids: &ByName) -> Plain<(Option<String>, Option<String>)> {
        let Some(&q) = kids.get("Quantity").first() else {
            return Ok((None, None));
        };
        let qk = self.children(q, QUANTITY)?;
        let qs = self.leaf_text(&qk, "QuantityString").ok_or(NotPlain)?;
        Ok((Some(qs), self.leaf_text(&qk, "UnitOfMeasure")))
    }

    fn material(&self, m: u32) -> Plain<Material> {
        let mk = self.children(m, MATERIAL)?;
        let (qty, unit) = self.quantity(&mk)?;
        if mk.has("MaterialLotID") && mk.has("MaterialSubLotID") {
            return Err(NotPlain);
        }
        let lot_els = if mk.has("MaterialLotID") {
            mk.get("MaterialLotID")
        } else {
            mk.get("MaterialSubLotID")
        };
        Ok(Material {
            use_: self.leaf_text(&mk, "MaterialUse").unwrap_or_default(),
            qty,
            unit,
            mat: self.leaf_text(&mk, "MaterialDefinitionID"),
            lots: self.texts(lot_els),
            line: self.node(m).line,
        })
    }

    fn named(&self, els: &[u32], shape: usize, name: &str) -> Plain<Vec<(Vec<String>, u32)>> {
        els.iter()
            .map(|&e| {
                let kids = self.children(e, shape)?;
                Ok((self.texts(kids.get(name)), self.node(e).line))
            })
            .collect()
    }

    fn time(&self, kids: &ByName, name: &str) -> Option<String> {
        self.leaf_text(kids, name)
    }

    fn response(&self, el: u32) -> Plain<Response> {
        let top = self.production_kids(el, RESPONSE)?;
        let rid = self.leaf_text(&top, "ID").ok_or(NotPlain)?;
        if top.has("ProductionRequestID") && top.has("OperationsRequestID") {
            return Err(NotPlain);
        }
        let oid = self
            .leaf_text(&top, "ProductionRequestID")
            .or_else(|| self.leaf_text(&top, "OperationsRequestID"))
            .unwrap_or_else(|| rid.clone());
        let segs = top
            .get("SegmentResponse")
            .iter()
            .map(|&s| {
                let kids = self.children(s, SEGMENT_RESPONSE)?;
                let materials = kids
                    .get("MaterialActual")
                    .iter()
                    .map(|&m| self.material(m))
                    .collect::<Plain<Vec<_>>>()?;
                Ok(ActualSegment {
                    start: self.time(&kids, "ActualStartTime"),
                    end: self.time(&kids, "ActualEndTime"),
                    materials,
                    equipment: self.named(kids.get("EquipmentActual"), EQUIPMENT, "EquipmentID")?,
                    personnel: self.named(kids.get("PersonnelActual"), PERSONNEL, "PersonID")?,
                })
            })
            .collect::<Plain<Vec<_>>>()?;
        Ok(Response {
            rid,
            oid,
            state: self.leaf_text(&top, "ResponseState"),
            start: self.time(&top, "StartTime"),
            end: self.time(&top, "EndTime"),
            segs,
        })
    }

    fn request(&self, el: u32) -> Plain<Request> {
        let top = self.production_kids(el, REQUEST)?;
        let oid = self.leaf_text(&top, "ID").ok_or(NotPlain)?;
        let segs = top
            .get("SegmentRequirement")
            .iter()
            .map(|&s| {
                let kids = self.children(s, SEGMENT_REQUIREMENT)?;
                let ops = self
                    .tree
                    .kids(s)
                    .filter(|&c| {
                        matches!(
                            self.node(c).local,
                            "ProcessSegmentID" | "ProductSegmentID" | "OperationsSegmentID"
                        )
                    })
                    .filter_map(|c| self.text(c))
                    .collect();
                let materials = kids
                    .get("MaterialRequirement")
                    .iter()
                    .map(|&m| self.material(m))
                    .collect::<Plain<Vec<_>>>()?;
                Ok(RequiredSegment {
                    earliest: self.time(&kids, "EarliestStartTime"),
                    latest: self.time(&kids, "LatestEndTime"),
                    ops,
                    materials,
                    equipment: self.named(kids.get("EquipmentRequirement"), EQUIPMENT, "EquipmentID")?,
                })
            })
            .collect::<Plain<Vec<_>>>()?;
        Ok(Request {
            oid,
            state: self.leaf_text(&top, "RequestState"),
            name: self.leaf_text(&top, "Description"),
            valid_from: self.time(&top, "EffectiveStartDate"),
            valid_to: self.time(&top, "EffectiveEndDate"),
            start: self.time(&top, "StartTime"),
            end: self.time(&top, "EndTime"),
            segs,
        })
    }

    /// `plain.value`: a property Value's own text, or that of its one ValueString.
    fn value(&self, v: u32) -> Plain<Option<String>> {
        if self.leaf(v) {
            return Ok(self.text(v));
        }
        let vk = self.children(v, VALUE)?;
        if !vk.has("ValueString") {
            return Err(NotPlain);
        }
        Ok(self.leaf_text(&vk, "ValueString"))
    }

    fn lot(&self, el: u32) -> Plain<Lot> {
        let kids = self.children(el, LOT)?;
        let id = self.leaf_text(&kids, "ID").ok_or(NotPlain)?;
        let (qty, unit) = self.quantity(&kids)?;
        let properties = kids
            .get("MaterialLotProperty")
            .iter()
            .map(|&p| {
                let pk = self.children(p, PROPERTY)?;
                let mut vals = Vec::new();
                for &v in pk.get("Value") {
                    if let Some(t) = self.value(v)? {
                        vals.push(t);
                    }
                }
                Ok((self.leaf_text(&pk, "ID"), vals, self.node(p).line))
            })
            .collect::<Plain<Vec<_>>>()?;
        let scope = match kids.get("HierarchyScope").first() {
            None => None,
            Some(&hs) => {
                let hk = self.children(hs, SCOPE)?;
                if hk.has("EquipmentLevel") && hk.has("EquipmentElementLevel") {
                    return Err(NotPlain);
                }
                let eid = self.leaf_text(&hk, "EquipmentID").ok_or(NotPlain)?;
                let level = self
                    .leaf_text(&hk, "EquipmentElementLevel")
                    .or_else(|| self.leaf_text(&hk, "EquipmentLevel"));
                Some((eid, level, self.node(hs).line))
            }
        };
        let components = kids
            .get("AssemblyLot")
            .iter()
            .map(|&c| self.lot(c))
            .collect::<Plain<Vec<_>>>()?;
        Ok(Lot {
            line: self.node(el).line,
            id,
            name: self.leaf_text(&kids, "Description"),
            valid_from: self.time(&kids, "EffectiveStartDate"),
            valid_to: self.time(&kids, "EffectiveEndDate"),
            material: self.leaf_text(&kids, "MaterialDefinitionID"),
            status: self.leaf_text(&kids, "Status"),
            quantity: (qty, unit),
            properties,
            scope,
            components,
            whole: kids.has("Quantity") && kids.has("MaterialDefinitionID"),
        })
    }

    /// The first child named by the first of `names` that has one (`R._first`).
    fn first_named(&self, el: u32, names: &[&str]) -> Option<u32> {
        names
            .iter()
            .find_map(|n| self.tree.kids(el).find(|&k| self.node(k).local == *n))
    }

    /// `R.text(*names)`: the first non-empty text among the children of those names, in
    /// document order; an element of them with children is not plain (`R.value` would read it).
    fn first_text(&self, el: u32, names: &[&str]) -> Plain<Option<String>> {
        for k in self.tree.kids(el) {
            if names.contains(&self.node(k).local) {
                if !self.leaf(k) {
                    return Err(NotPlain);
                }
                if let Some(t) = self.text(k) {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    /// The text `_dt(holder, *names)` reads of a container (a leaf's, cleaned).
    fn context_time(&self, el: u32, names: &[&str]) -> Plain<Option<String>> {
        match self.first_named(el, names) {
            None => Ok(None),
            Some(k) if !self.leaf(k) => Err(NotPlain),
            Some(k) => Ok(self.text(k)),
        }
    }

    /// What the units of a container read of it: its times and its equipment chain (`_scope`).
    fn context(&self, el: u32) -> Plain<Context> {
        let mut chain = Vec::new();
        let mut node = self.first_named(el, &["HierarchyScope", "Location"]);
        while let Some(n) = node {
            let eid = self.first_text(n, &["EquipmentID"])?;
            let level = self.first_text(n, &["EquipmentElementLevel", "EquipmentLevel"])?;
            chain.push((eid, level, self.node(n).line, self.path(n)));
            node = self.first_named(n, &["HierarchyScopeChild", "Location", "HierarchyScope"]);
        }
        Ok(Context {
            published: self.context_time(el, &["PublishedDate"])?,
            start: self.context_time(el, &["StartTime"])?,
            end: self.context_time(el, &["EndTime", "Endtime"])?,
            chain,
        })
    }

    fn unit(&self, el: u32, context: usize) -> Plain<Unit> {
        let n = self.node(el);
        let body = match n.local {
            "ProductionResponse" | "OperationsResponse" => UnitBody::Response(self.response(el)?),
            "ProductionRequest" | "OperationsRequest" => UnitBody::Request(self.request(el)?),
            "MaterialLot" => UnitBody::Lot(self.lot(el)?),
            _ => return Err(NotPlain),
        };
        Ok(Unit {
            path: self.path(el),
            line: n.line,
            context,
            body,
        })
    }

    /// `_plain_message`: one message in the usual envelope, every unit plain.
    fn message(&self) -> Plain<Message> {
        let cfg = self.cfg;
        let root = self.node(self.tree.root);
        let ns = root.ns;
        let top: Vec<u32> = self.tree.kids(self.tree.root).collect();
        if ns == 0 || top.len() != 2 {
            return Err(NotPlain);
        }
        let (app, data) = (top[0], top[1]);
        let in_ns = |i: u32, local: &str| self.node(i).ns == ns && self.node(i).local == local;
        if !in_ns(app, "ApplicationArea") || !in_ns(data, "DataArea") || !self.plain_context(app, ns) {
            return Err(NotPlain);
        }
        let mut units: Vec<(u32, u32)> = Vec::new();
        for c in self.tree.kids(data) {
            let n = self.node(c);
            if n.ns != ns {
                return Err(NotPlain);
            }
            if cfg.units.contains(n.local) {
                units.push((c, data));
            } else if cfg.verbs.iter().any(|v| v == n.local) {
                if !self.leaf(c) {
                    return Err(NotPlain);
                }
            } else if cfg.containers.contains(n.local) {
                for k in self.tree.kids(c) {
                    let kn = self.node(k);
                    if kn.ns == ns && cfg.units.contains(kn.local) {
                        units.push((k, c));
                    } else if kn.ns != ns || !cfg.context.contains(kn.local) || !self.plain_context(k, ns) {
                        return Err(NotPlain);
                    }
                }
            } else {
                return Err(NotPlain);
            }
        }
        let mut sender = None;
        if let Some(s) = self.tree.kids(app).find(|&k| self.node(k).local == "Sender") {
            let ids: Vec<u32> = self
                .tree
                .kids(s)
                .filter(|&k| self.node(k).local == "LogicalID")
                .collect();
            if ids.iter().any(|&k| !self.leaf(k)) {
                return Err(NotPlain);
            }
            sender = ids.iter().find_map(|&k| self.text(k));
        }
        let mut holders: Vec<u32> = Vec::new();
        let mut contexts = Vec::new();
        let mut out = Vec::new();
        for (u, holder) in units {
            let i = match holders.iter().position(|h| *h == holder) {
                Some(i) => i,
                None => {
                    contexts.push(self.context(holder)?);
                    holders.push(holder);
                    holders.len() - 1
                }
            };
            out.push(self.unit(u, i)?);
        }
        Ok(Message {
            ns: String::from_utf8_lossy(&self.tree.namespaces[ns as usize]).into_owned(),
            root: root.local.to_owned(),
            sender,
            units: out,
            contexts,
        })
    }
}

// ------------------------------------------------------------------------------------------
// What is handed back (plain tuples; graph_loader/b2mml/native.py names their fields)
// ------------------------------------------------------------------------------------------

struct Material {
    use_: String,
    qty: Option<String>,
    unit: Option<String>,
    mat: Option<String>,
    lots: Vec<String>,
    line: u32,
}

struct ActualSegment {
    start: Option<String>,
    end: Option<String>,
    materials: Vec<Material>,
    equipment: Vec<(Vec<String>, u32)>,
    personnel: Vec<(Vec<String>, u32)>,
}

struct RequiredSegment {
    earliest: Option<String>,
    latest: Option<String>,
    ops: Vec<String>,
    materials: Vec<Material>,
    equipment: Vec<(Vec<String>, u32)>,
}

struct Response {
    rid: String,
    oid: String,
    state: Option<String>,
    start: Option<String>,
    end: Option<String>,
    segs: Vec<ActualSegment>,
}

struct Request {
    oid: String,
    state: Option<String>,
    name: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    start: Option<String>,
    end: Option<String>,
    segs: Vec<RequiredSegment>,
}

struct Lot {
    line: u32,
    id: String,
    name: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
    material: Option<String>,
    status: Option<String>,
    quantity: (Option<String>, Option<String>),
    properties: Vec<(Option<String>, Vec<String>, u32)>,
    scope: Option<(String, Option<String>, u32)>,
    components: Vec<Lot>,
    whole: bool,
}

enum UnitBody {
    Response(Response),
    Request(Request),
    Lot(Lot),
}

struct Unit {
    path: String,
    line: u32,
    context: usize,
    body: UnitBody,
}

struct Context {
    published: Option<String>,
    start: Option<String>,
    end: Option<String>,
    chain: Vec<(Option<String>, Option<String>, u32, String)>,
}

struct Message {
    ns: String,
    root: String,
    sender: Option<String>,
    units: Vec<Unit>,
    contexts: Vec<Context>,
}

type Obj<'py> = Bound<'py, PyAny>;

fn materials_py<'py>(py: Python<'py>, ms: Vec<Material>) -> PyResult<Vec<Obj<'py>>> {
    ms.into_iter()
        .map(|m| {
            Ok((m.use_, m.qty, m.unit, m.mat, m.lots, m.line)
                .into_pyobject(py)?
                .into_any())
        })
        .collect()
}

fn lot_py<'py>(py: Python<'py>, l: Lot) -> PyResult<Obj<'py>> {
    let components = l
        .components
        .into_iter()
        .map(|c| lot_py(py, c))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((
        l.line,
        l.id,
        l.name,
        l.valid_from,
        l.valid_to,
        l.material,
        l.status,
        l.quantity,
        l.properties,
        l.scope,
        components,
        l.whole,
    )
        .into_pyobject(py)?
        .into_any())
}

fn unit_py<'py>(py: Python<'py>, u: Unit) -> PyResult<Obj<'py>> {
    let (kind, body) = match u.body {
        UnitBody::Response(r) => {
            let segs = r
                .segs
                .into_iter()
                .map(|s| {
                    Ok(
                        (s.start, s.end, materials_py(py, s.materials)?, s.equipment, s.personnel)
                            .into_pyobject(py)?
                            .into_any(),
                    )
                })
                .collect::<PyResult<Vec<_>>>()?;
            (
                "response",
                (r.rid, r.oid, r.state, r.start, r.end, segs)
                    .into_pyobject(py)?
                    .into_any(),
            )
        }
        UnitBody::Request(r) => {
            let segs = r
                .segs
                .into_iter()
                .map(|s| {
                    Ok(
                        (s.earliest, s.latest, s.ops, materials_py(py, s.materials)?, s.equipment)
                            .into_pyobject(py)?
                            .into_any(),
                    )
                })
                .collect::<PyResult<Vec<_>>>()?;
            (
                "request",
                (r.oid, r.state, r.name, r.valid_from, r.valid_to, r.start, r.end, segs)
                    .into_pyobject(py)?
                    .into_any(),
            )
        }
        UnitBody::Lot(l) => ("lot", lot_py(py, l)?),
    };
    Ok((kind, u.path, u.line, u.context, body).into_pyobject(py)?.into_any())
}

/// A message's units and contexts.
fn body_py<'py>(py: Python<'py>, units: Vec<Unit>, contexts: Vec<Context>) -> PyResult<(Obj<'py>, Obj<'py>)> {
    let units = units
        .into_iter()
        .map(|u| unit_py(py, u))
        .collect::<PyResult<Vec<_>>>()?;
    let contexts = contexts
        .into_iter()
        .map(|c| Ok((c.published, c.start, c.end, c.chain).into_pyobject(py)?.into_any()))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((
        units.into_pyobject(py)?.into_any(),
        contexts.into_pyobject(py)?.into_any(),
    ))
}

fn config() -> PyResult<Arc<Config>> {
    CONFIG
        .read()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("configuration lock poisoned"))?
        .clone()
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("configure() was not called"))
}

fn message_of(data: &[u8], cfg: &Config) -> Option<Message> {
    let tree = parse(data)?;
    Reader { tree: &tree, cfg }.message().ok()
}

/// The file's bytes when it has at most `max_bytes` (a bigger one is streamed by lxml).
fn read_limited(path: &str, max_bytes: i64) -> Option<Vec<u8>> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if i64::try_from(len).map_or(true, |n| n > max_bytes) {
        return None;
    }
    // read into a buffer of the known size (File::read_to_end would ask the size again)
    let mut data = vec![0u8; len as usize + 1];
    let mut n = 0;
    loop {
        match f.read(&mut data[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n == data.len() {
                    data.resize(n * 2, 0); // the file grew since
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    data.truncate(n);
    Some(data)
}

// The calls are made into Python objects from references: what the workers of `map_files`
// allocated goes back to them to be freed (freed here, on another thread, it contends for the
// allocator's locks: measured, nearly twice the CPU).

fn val_py<'py>(py: Python<'py>, v: &Val) -> PyResult<Obj<'py>> {
    Ok(match v {
        Val::None => py.None().into_bound(py),
        Val::Str(s) => s.as_str().into_pyobject(py)?.into_any(),
        Val::Num(f) => f.into_pyobject(py)?.into_any(),
        Val::List(items) => items.as_slice().into_pyobject(py)?.into_any(),
    })
}

fn props_py<'py>(py: Python<'py>, props: &Option<Props>) -> PyResult<Obj<'py>> {
    let Some(props) = props else {
        return Ok(py.None().into_bound(py));
    };
    let d = PyDict::new(py);
    for (k, v) in props {
        d.set_item(PyString::intern(py, k), val_py(py, v)?)?;
    }
    Ok(d.into_any())
}

fn ops_py<'py>(py: Python<'py>, ops: &Ops) -> PyResult<Obj<'py>> {
    let nodes = ops
        .nodes
        .iter()
        .map(|n| {
            let cls = PyString::intern(py, &n.cls);
            let (p, d) = (props_py(py, &n.props)?, props_py(py, &n.defaults)?);
            Ok((cls, n.id.as_str(), n.origin, p, d, n.explicit)
                .into_pyobject(py)?
                .into_any())
        })
        .collect::<PyResult<Vec<_>>>()?;
    let edges = ops
        .edges
        .iter()
        .map(|e| {
            let rel = PyString::intern(py, &e.rel);
            Ok((e.src.as_str(), rel, e.dst.as_str(), e.origin, props_py(py, &e.props)?)
                .into_pyobject(py)?
                .into_any())
        })
        .collect::<PyResult<Vec<_>>>()?;
    let refs = ops
        .refs
        .iter()
        .map(|r| {
            let (start, end) = (r.start.as_deref(), r.end.as_deref());
            Ok((r.order.as_str(), r.equipment.as_str(), r.origin, r.actual, start, end)
                .into_pyobject(py)?
                .into_any())
        })
        .collect::<PyResult<Vec<_>>>()?;
    let assembly = ops
        .assembly
        .iter()
        .map(|(lot, comp, o)| Ok((lot.as_str(), comp.as_str(), *o).into_pyobject(py)?.into_any()))
        .collect::<PyResult<Vec<_>>>()?;
    let paths: Vec<&str> = ops.paths.iter().map(String::as_str).collect();
    Ok((ops.units, paths, ops.origins.as_slice(), nodes, edges, refs, assembly)
        .into_pyobject(py)?
        .into_any())
}

fn map_config() -> PyResult<Arc<MapConfig>> {
    MAPPING
        .read()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("configuration lock poisoned"))?
        .clone()
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("configure_mapping() was not called"))
}

/// What became of one file, before any Python object is made of it.
enum Mapped {
    NotTaken,
    Declined(Message),
    Calls(Message, Ops),
}

fn mapped(data: &[u8], cfg: &Config, map_cfg: &MapConfig, tz: Option<i32>) -> Mapped {
    match message_of(data, cfg) {
        None => Mapped::NotTaken,
        Some(msg) => match mapping::map_message(&msg, map_cfg, tz) {
            Ok(ops) => Mapped::Calls(msg, ops),
            Err(mapping::Declined) => Mapped::Declined(msg),
        },
    }
}

/// The Python objects of a file's result, and what is left of it to free (see `val_py`).
fn mapped_into_py<'py>(py: Python<'py>, got: Mapped) -> PyResult<(Option<Obj<'py>>, Option<Mapped>)> {
    match got {
        Mapped::NotTaken => Ok((None, None)),
        Mapped::Calls(msg, ops) => {
            let body = ops_py(py, &ops)?;
            let obj = ("ops", msg.ns.as_str(), msg.root.as_str(), msg.sender.as_deref(), body).into_pyobject(py)?;
            Ok((Some(obj.into_any()), Some(Mapped::Calls(msg, ops))))
        }
        Mapped::Declined(msg) => {
            let (units, contexts) = body_py(py, msg.units, msg.contexts)?;
            let obj = ("raw", msg.ns, msg.root, msg.sender, (units, contexts)).into_pyobject(py)?;
            Ok((Some(obj.into_any()), None))
        }
    }
}

fn mapped_py<'py>(py: Python<'py>, data: &[u8], tz: Option<i32>) -> PyResult<Option<Obj<'py>>> {
    let (cfg, map_cfg) = (config()?, map_config()?);
    let got = mapped(data, &cfg, &map_cfg, tz);
    Ok(mapped_into_py(py, got)?.0)
}

/// Files read and mapped ahead by worker threads, handed out in order (`map_files`).
struct Ahead {
    paths: Vec<String>,
    max_bytes: i64,
    tz: Option<i32>,
    cfg: Arc<Config>,
    map_cfg: Arc<MapConfig>,
    window: usize,
    state: Mutex<AheadState>,
    changed: Condvar,
}

#[derive(Default)]
struct AheadState {
    /// files claimed by a worker so far (the next one to claim)
    claimed: usize,
    /// files handed out so far
    taken: usize,
    done: HashMap<usize, Mapped>,
    /// results handed out, for a worker to free
    spent: Vec<Mapped>,
    stop: bool,
}

impl Ahead {
    /// A worker: claim the next file while fewer than `window` wait to be handed out.
    fn work(&self) {
        loop {
            let (i, spent) = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                while !st.stop && st.claimed < self.paths.len() && st.claimed >= st.taken + self.window {
                    st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.stop || st.claimed >= self.paths.len() {
                    return;
                }
                st.claimed += 1;
                (st.claimed - 1, std::mem::take(&mut st.spent))
            };
            drop(spent); // here, on the thread that allocated most of it
                         // a panic here would leave the file's turn waited for: the file goes to lxml instead
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match read_limited(&self.paths[i], self.max_bytes) {
                    None => Mapped::NotTaken,
                    Some(data) => mapped(&data, &self.cfg, &self.map_cfg, self.tz),
                }
            }))
            .unwrap_or(Mapped::NotTaken);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.done.insert(i, got);
            self.changed.notify_all();
        }
    }

    /// File `i`'s result once a worker has it (`spent`: the last one handed out, for a worker
    /// to free); None once stopped.
    fn take(&self, i: usize, spent: Option<Mapped>) -> Option<Mapped> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.spent.extend(spent);
        loop {
            if st.stop {
                return None;
            }
            if let Some(got) = st.done.remove(&i) {
                st.taken = i + 1;
                self.changed.notify_all();
                return Some(got);
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// `map_file` of each of `paths` in turn, read and mapped ahead by worker threads.
#[pyclass]
struct MappedFiles {
    ahead: Arc<Ahead>,
    next: usize,
    spent: Option<Mapped>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

#[pymethods]
impl MappedFiles {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<(Option<Obj<'py>>,)>> {
        if self.next >= self.ahead.paths.len() {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let ahead = Arc::clone(&self.ahead);
        let spent = self.spent.take();
        match py.detach(move || ahead.take(i, spent)) {
            Some(got) => {
                let (obj, spent) = mapped_into_py(py, got)?;
                self.spent = spent;
                Ok(Some((obj,)))
            }
            None => Ok(None), // closed
        }
    }

    /// Stops the workers (what is under way is finished and dropped) and the iteration.
    fn close(&mut self, py: Python<'_>) {
        {
            let mut st = self.ahead.state.lock().unwrap_or_else(|e| e.into_inner());
            st.stop = true;
            self.ahead.changed.notify_all();
        }
        let workers = std::mem::take(&mut self.workers);
        py.detach(move || {
            for w in workers {
                let _ = w.join();
            }
        });
    }
}

impl Drop for MappedFiles {
    fn drop(&mut self) {
        let mut st = self.ahead.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stop = true;
        self.ahead.changed.notify_all();
    }
}

/// `map_file` of each of `paths`, in order, each as a 1-tuple (so that a file the reader does
/// not take reads as `(None,)`), read and mapped ahead by `workers` threads, at most `window`
/// files ahead of the one handed out.
#[pyfunction]
#[pyo3(signature = (paths, max_bytes, tz, workers, window))]
fn map_files(
    paths: Vec<String>,
    max_bytes: i64,
    tz: Option<i32>,
    workers: usize,
    window: usize,
) -> PyResult<MappedFiles> {
    let ahead = Arc::new(Ahead {
        paths,
        max_bytes,
        tz,
        cfg: config()?,
        map_cfg: map_config()?,
        window: window.max(1),
        state: Mutex::new(AheadState::default()),
        changed: Condvar::new(),
    });
    let workers = (0..workers.max(1))
        .map(|_| {
            let a = Arc::clone(&ahead);
            std::thread::spawn(move || a.work())
        })
        .collect();
    Ok(MappedFiles {
        ahead,
        next: 0,
        spent: None,
        workers,
    })
}

/// The calls for the file at `path` when it has at most `max_bytes` and the reader takes it:
/// `("ops", namespace, root, sender, ops)`; `("raw", namespace, root, sender, (units,
/// contexts))` when the mapping declines it; None when the reader does not take it. `tz`: the
/// default zone's offset in minutes, None when it is not a fixed offset.
#[pyfunction]
#[pyo3(signature = (path, max_bytes, tz))]
fn map_file<'py>(py: Python<'py>, path: &str, max_bytes: i64, tz: Option<i32>) -> PyResult<Option<Obj<'py>>> {
    let Some(data) = read_limited(path, max_bytes) else {
        return Ok(None);
    };
    mapped_py(py, &data, tz)
}

/// `map_file` of a file's bytes.
#[pyfunction]
#[pyo3(signature = (data, tz))]
fn map_bytes<'py>(py: Python<'py>, data: &Bound<'py, PyBytes>, tz: Option<i32>) -> PyResult<Option<Obj<'py>>> {
    mapped_py(py, data.as_bytes(), tz)
}

static MAPPING: RwLock<Option<Arc<MapConfig>>> = RwLock::new(None);

/// The code lists and field kinds the mapping reads, from the Python modules that define them.
#[pyfunction]
fn configure_mapping(
    levels: HashMap<String, String>,
    lot_status: HashMap<String, String>,
    order_status: HashMap<String, String>,
    hierarchy: HashMap<(String, String), String>,
    produced: HashSet<String>,
    consumed: HashSet<String>,
    lot_fields: HashMap<String, String>,
) -> PyResult<()> {
    let cfg = MapConfig {
        levels,
        lot_status,
        order_status,
        hierarchy,
        produced,
        consumed,
        lot_fields,
    };
    *MAPPING
        .write()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("configuration lock poisoned"))? = Some(Arc::new(cfg));
    Ok(())
}

/// The names and shapes the readers use, from the Python module that defines them.
#[pyfunction]
fn configure(
    shapes: HashMap<String, Shape>,
    units: Vec<String>,
    containers: Vec<String>,
    context: Vec<String>,
    verbs: Vec<String>,
) -> PyResult<()> {
    let mut table = Vec::new();
    for name in SHAPE_NAMES {
        let shape = shapes
            .get(name)
            .ok_or_else(|| pyo3::exceptions::PyValueError::new_err(format!("shape {name} missing")))?;
        table.push(ShapeRules(
            shape
                .iter()
                .map(|(k, &(one, nested))| (k.clone(), one, nested))
                .collect(),
        ));
    }
    let cfg = Config {
        shapes: table,
        units: units.into_iter().collect(),
        containers: containers.into_iter().collect(),
        context: context.into_iter().collect(),
        verbs,
    };
    *CONFIG
        .write()
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("configuration lock poisoned"))? = Some(Arc::new(cfg));
    Ok(())
}

#[pymodule]
fn plantgraph_b2mml_reader(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(configure_mapping, m)?)?;
    m.add_function(wrap_pyfunction!(map_file, m)?)?;
    m.add_function(wrap_pyfunction!(map_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(map_files, m)?)?;
    m.add_class::<MappedFiles>()?;
    Ok(())
}
