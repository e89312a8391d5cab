//! The importer's emitters for a plain message, compiled (importer.py: `_emit_lot`,
//! `_emit_response` and `_emit_actuals`, `_emit_plain_request` and `_emit_request`, `_chain_of`,
//! `_edge`, and the value readers they are given: `_iso`, `parse_quantity`, the code lists).
//!
//! Why: once the reader had the texts, converting them and making the calls in Python was most
//! of a big import's mapping time. Here a message the reader took becomes the calls themselves
//! (the ops), which the importer only has to make on its batch.
//!
//! It maps only what it can map exactly as Python does. At the first value it does not read
//! the same way for certain (a time or number of another form, a code not in the lists, a
//! naive time when the default zone is not a fixed offset), and wherever Python would report
//! something as not mapped, it declines, and the importer converts the raw texts in Python as
//! before. So every report entry and every message wording stays Python's.

use super::{ActualSegment, Context, Lot, Material, Message, Request, RequiredSegment, Response, UnitBody};
use std::collections::{HashMap, HashSet};

/// The code lists and field kinds the emitters read, from the Python modules that define them.
pub struct MapConfig {
    pub levels: HashMap<String, String>,
    pub lot_status: HashMap<String, String>,
    pub order_status: HashMap<String, String>,
    pub hierarchy: HashMap<(String, String), String>,
    pub produced: HashSet<String>,
    pub consumed: HashSet<String>,
    pub lot_fields: HashMap<String, String>,
}

/// This message is converted in Python instead.
pub struct Declined;
type M<T> = Result<T, Declined>;

pub enum Val {
    None,
    Str(String),
    Num(f64),
    List(Vec<String>),
}

impl Val {
    fn text(t: Option<String>) -> Val {
        t.map_or(Val::None, Val::Str)
    }

    fn num(q: Option<f64>) -> Val {
        q.map_or(Val::None, Val::Num)
    }
}

/// A dict's items in insertion order (the order Python's dict literals and assignments give).
pub type Props = Vec<(String, Val)>;

/// `props[key] = value`: in place when the key is there, else at the end.
fn set(props: &mut Props, key: &str, value: Val) {
    match props.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => props.push((key.to_owned(), value)),
    }
}

fn props(items: Vec<(&str, Val)>) -> Props {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub struct NodeOp {
    pub cls: String,
    pub id: String,
    pub origin: u32,
    pub props: Option<Props>,
    pub defaults: Option<Props>,
    pub explicit: bool,
}

pub struct EdgeOp {
    pub src: String,
    pub rel: String,
    pub dst: String,
    pub origin: u32,
    pub props: Option<Props>,
}

/// An `_EquipRef`: (order, equipment, origin, actual, start, end).
pub struct RefOp {
    pub order: String,
    pub equipment: String,
    pub origin: u32,
    pub actual: bool,
    pub start: Option<String>,
    pub end: Option<String>,
}

/// The calls for one message: node and edge calls each in their order, the links left for the
/// end, and the places they name (an origin is (line, index into `paths`)).
#[derive(Default)]
pub struct Ops {
    pub units: usize,
    pub paths: Vec<String>,
    pub origins: Vec<(u32, u32)>,
    pub nodes: Vec<NodeOp>,
    pub edges: Vec<EdgeOp>,
    pub refs: Vec<RefOp>,
    pub assembly: Vec<(String, String, u32)>,
}

/// A date-time as `datetime.isoformat` writes it, and its instant (microseconds, for ordering).
#[derive(Clone)]
struct Time {
    text: String,
    instant: i64,
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `parse_datetime(text, default_tz).isoformat()` for the forms read here for certain:
/// `YYYY-MM-DD`, and `YYYY-MM-DDTHH:MM:SS` with an optional fraction (cut at microseconds) and
/// an optional `Z` or `±HH:MM`; a time without an offset takes `default` (minutes east of UTC;
/// None: the default zone is not a fixed offset). None for anything else.
fn iso(s: &str, default: Option<i32>) -> Option<Time> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if y == 0 || !(1..=12).contains(&mo) || d == 0 || d > days_in(y, mo) {
        return None;
    }
    let (mut hh, mut mi, mut ss, mut us) = (0, 0, 0, 0);
    let offset: i32;
    if b.len() == 10 {
        offset = default?;
    } else {
        if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        (hh, mi, ss) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
        if hh > 23 || mi > 59 || ss > 59 {
            return None;
        }
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            let frac = &b[start..i.min(start + 6)];
            us = digits(frac)? * 10u32.pow(6 - frac.len() as u32);
        }
        offset = match &b[i..] {
            [] => default?,
            [b'Z'] | [b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let minutes = (oh * 60 + om) as i32;
                if *sign == b'-' {
                    -minutes
                } else {
                    minutes
                }
            }
            _ => return None,
        };
    }
    let mut text = format!("{y:04}-{mo:02}-{d:02}T{hh:02}:{mi:02}:{ss:02}");
    if us != 0 {
        text.push_str(&format!(".{us:06}"));
    }
    let sign = if offset < 0 { '-' } else { '+' };
    text.push_str(&format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60));
    let days = days_from_civil(i64::from(y), i64::from(mo), i64::from(d));
    let seconds = days * 86_400 + i64::from(hh * 3600 + mi * 60 + ss) - i64::from(offset) * 60;
    Some(Time {
        text,
        instant: seconds * 1_000_000 + i64::from(us),
    })
}

/// `parse_quantity` for the xsd:decimal and xsd:double forms read here for certain (sign,
/// digits, one point, exponent); both sides round the decimal to the nearest double.
fn quantity(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa = i - int_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa += i - frac_start;
    }
    if mantissa == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `quantity` of a text when there is one.
fn quantity_of(text: &Option<String>) -> M<Option<f64>> {
    match text {
        None => Ok(None),
        Some(t) => quantity(t).map(Some).ok_or(Declined),
    }
}

/// `values._norm`: lower case, letters and digits only.
fn norm(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `values.snake`: `ProducedAt` / `produced-at` / `Produced At` -> `produced_at`.
fn snake(name: &str) -> String {
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.trim().chars() {
        if c.is_ascii_uppercase() && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
            spaced.push('_');
        }
        spaced.push(c);
        prev = Some(c);
    }
    let mut out = String::with_capacity(spaced.len());
    let mut gap = false;
    for c in spaced.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if gap {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    if gap && !out.is_empty() {
        out.push('_');
    }
    out.trim_matches('_').to_owned()
}

/// The first (`latest`: last) of times by instant, the first written among equals (`_first`,
/// `_last`: `min` / `max` with `datetime.fromisoformat` as key).
fn pick(times: impl Iterator<Item = Time>, latest: bool) -> Option<Time> {
    times.fold(None, |best: Option<Time>, t| match best {
        Some(b) if (latest && t.instant <= b.instant) || (!latest && t.instant >= b.instant) => Some(b),
        _ => Some(t),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Use {
    Produced,
    Consumed,
}

struct MaterialUse {
    use_: Use,
    quantity: Option<f64>,
    unit: Option<String>,
    material: Option<String>,
    lots: Vec<String>,
    origin: u32,
}

struct Actual {
    start: Option<Time>,
    end: Option<Time>,
    materials: Vec<MaterialUse>,
    equipment: Vec<(Vec<String>, u32)>,
    personnel: Vec<(Vec<String>, u32)>,
}

struct Required {
    earliest: Option<Time>,
    latest: Option<Time>,
    ops: Vec<String>,
    materials: Vec<MaterialUse>,
    equipment: Vec<(Vec<String>, u32)>,
}

fn text_of(t: &Option<Time>) -> Option<String> {
    t.as_ref().map(|t| t.text.clone())
}

/// An equipment level reached: (id, class).
type Level = (String, String);

struct Mapper<'c> {
    cfg: &'c MapConfig,
    tz: Option<i32>,
    sender: Option<String>,
    ops: Ops,
    path_index: HashMap<String, u32>,
    origin_index: HashMap<(u32, u32), u32>,
}

impl Mapper<'_> {
    fn origin(&mut self, line: u32, path: &str) -> u32 {
        let p = match self.path_index.get(path) {
            Some(&p) => p,
            None => {
                let p = self.ops.paths.len() as u32;
                self.ops.paths.push(path.to_owned());
                self.path_index.insert(path.to_owned(), p);
                p
            }
        };
        let next = self.ops.origins.len() as u32;
        let o = *self.origin_index.entry((line, p)).or_insert(next);
        if o == next {
            self.ops.origins.push((line, p));
        }
        o
    }

    fn time(&self, text: &Option<String>) -> M<Option<Time>> {
        match text {
            None => Ok(None),
            Some(t) => iso(t, self.tz).map(Some).ok_or(Declined),
        }
    }

    /// A code list's value for a text (None for none).
    fn code(table: &HashMap<String, String>, text: &Option<String>) -> M<Option<String>> {
        match text {
            None => Ok(None),
            Some(t) => table.get(&norm(t)).cloned().map(Some).ok_or(Declined),
        }
    }

    fn node(
        &mut self,
        cls: &str,
        id: &str,
        origin: u32,
        props: Option<Props>,
        defaults: Option<Props>,
        explicit: bool,
    ) {
        self.ops.nodes.push(NodeOp {
            cls: cls.to_owned(),
            id: id.to_owned(),
            origin,
            props,
            defaults,
            explicit,
        });
    }

    /// `_edge`: attributed to the message's sender when it names one.
    fn edge(&mut self, src: &str, rel: &str, dst: &str, origin: u32, mut props: Props) {
        if let Some(s) = &self.sender {
            if !props.iter().any(|(k, _)| k == "source_system") {
                props.push(("source_system".to_owned(), Val::Str(s.clone())));
            }
        }
        self.ops.edges.push(EdgeOp {
            src: src.to_owned(),
            rel: rel.to_owned(),
            dst: dst.to_owned(),
            origin,
            props: (!props.is_empty()).then_some(props),
        });
    }

    /// `_chain_of` of a container's equipment chain: (site, the deepest (id, class)).
    fn chain(&mut self, ctx: &Context) -> M<(Option<String>, Option<Level>)> {
        let mut chain = Vec::new();
        for (eid, level, line, path) in &ctx.chain {
            let Some(eid) = eid else { continue };
            let cls = level.as_deref().and_then(|l| self.cfg.levels.get(&norm(l)).cloned());
            if cls.is_none() && level.is_some() {
                return Err(Declined); // reported as not mapped
            }
            chain.push((eid.clone(), cls, *line, path.clone()));
        }
        let mut site: Option<String> = None;
        let mut prev: Option<Level> = None;
        for (eid, cls, line, path) in chain {
            let Some(cls) = cls else {
                prev = None;
                continue;
            };
            if cls == "Site" {
                site = Some(eid.clone());
            }
            let plant = if cls != "Enterprise" { site.clone() } else { None };
            let origin = self.origin(line, &path);
            self.node(
                &cls,
                &eid,
                origin,
                Some(props(vec![("plant", Val::text(plant))])),
                None,
                false,
            );
            if let Some((pid, pcls)) = &prev {
                if let Some(rel) = self.cfg.hierarchy.get(&(pcls.clone(), cls.clone())).cloned() {
                    self.edge(pid, &rel, &eid, origin, Vec::new());
                }
            }
            prev = Some((eid, cls));
        }
        Ok((site, prev))
    }

    fn material(&mut self, m: &Material, path: &str) -> M<MaterialUse> {
        let key: String = m
            .use_
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let use_ = if self.cfg.produced.contains(&key) {
            Use::Produced
        } else if self.cfg.consumed.contains(&key) {
            Use::Consumed
        } else {
            return Err(Declined); // reported as not mapped
        };
        let quantity = quantity_of(&m.qty)?;
        Ok(MaterialUse {
            use_,
            quantity,
            unit: m.unit.clone(),
            material: m.mat.clone(),
            lots: m.lots.clone(),
            origin: self.origin(m.line, path),
        })
    }

    fn named(&mut self, named: &[(Vec<String>, u32)], path: &str) -> Vec<(Vec<String>, u32)> {
        named
            .iter()
            .map(|(ids, line)| (ids.clone(), self.origin(*line, path)))
            .collect()
    }

    fn actual(&mut self, s: &ActualSegment, path: &str) -> M<Actual> {
        let mpath = format!("{path}/MaterialActual");
        let materials = s
            .materials
            .iter()
            .map(|m| self.material(m, &mpath))
            .collect::<M<Vec<_>>>()?;
        Ok(Actual {
            start: self.time(&s.start)?,
            end: self.time(&s.end)?,
            materials,
            equipment: self.named(&s.equipment, &format!("{path}/EquipmentActual")),
            personnel: self.named(&s.personnel, &format!("{path}/PersonnelActual")),
        })
    }

    fn required(&mut self, s: &RequiredSegment, path: &str) -> M<Required> {
        let mpath = format!("{path}/MaterialRequirement");
        let materials = s
            .materials
            .iter()
            .map(|m| self.material(m, &mpath))
            .collect::<M<Vec<_>>>()?;
        if materials.iter().any(|m| m.use_ != Use::Produced) {
            return Err(Declined); // not plain
        }
        Ok(Required {
            earliest: self.time(&s.earliest)?,
            latest: self.time(&s.latest)?,
            ops: s.ops.clone(),
            materials,
            equipment: self.named(&s.equipment, &format!("{path}/EquipmentRequirement")),
        })
    }

    /// `_emit_lot`; returns the lot's quantity and unit (an assembly link's).
    fn lot(&mut self, l: &Lot, path: &str, explicit: bool) -> M<(Option<f64>, Option<String>)> {
        let valid_from = self.time(&l.valid_from)?;
        let valid_to = self.time(&l.valid_to)?;
        let status = Self::code(&self.cfg.lot_status, &l.status)?;
        let q = quantity_of(&l.quantity.0)?;
        let unit = l.quantity.1.clone();
        let mut p = props(vec![
            ("name", Val::text(l.name.clone())),
            ("valid_from", Val::text(text_of(&valid_from))),
            ("valid_to", Val::text(text_of(&valid_to))),
        ]);
        if let Some(s) = &self.sender {
            p.push(("source_system".to_owned(), Val::Str(s.clone())));
        }
        if let Some(s) = status {
            p.push(("status".to_owned(), Val::Str(s)));
        }
        set(&mut p, "quantity", Val::num(q));
        set(&mut p, "unit", Val::text(unit.clone()));
        for (pid, vals, _line) in &l.properties {
            let key = pid.as_deref().map(snake).unwrap_or_default();
            let Some(kind) = self.cfg.lot_fields.get(&key) else {
                return Err(Declined); // reported as not mapped
            };
            let Some(first) = vals.first() else { continue };
            let value = match kind.as_str() {
                "datetime" => Val::Str(iso(first, self.tz).ok_or(Declined)?.text),
                "number" => Val::Num(quantity(first).ok_or(Declined)?),
                "list" => return Err(Declined),
                _ => Val::Str(first.clone()),
            };
            set(&mut p, &key, value);
        }
        let mut site = None;
        if let Some((eid, level, line)) = &l.scope {
            let cls = level
                .as_deref()
                .and_then(|lv| self.cfg.levels.get(&norm(lv)).cloned())
                .ok_or(Declined)?;
            site = (cls == "Site").then(|| eid.clone());
            let origin = self.origin(*line, &format!("{path}/HierarchyScope"));
            let plant = if cls != "Enterprise" { site.clone() } else { None };
            self.node(
                &cls,
                eid,
                origin,
                Some(props(vec![("plant", Val::text(plant))])),
                None,
                false,
            );
        }
        set(&mut p, "plant", Val::text(site));
        let origin = self.origin(l.line, path);
        self.node("Lot", &l.id, origin, Some(p), None, explicit);
        if let Some(m) = &l.material {
            self.edge(&l.id, "FOR_MATERIAL", m, origin, Vec::new());
        }
        let cpath = format!("{path}/AssemblyLot");
        for comp in &l.components {
            let (cq, cu) = self.lot(comp, &cpath, comp.whole)?;
            let co = self.origin(comp.line, &cpath);
            self.edge(
                &l.id,
                "DERIVED_FROM",
                &comp.id,
                co,
                props(vec![("quantity", Val::num(cq)), ("unit", Val::text(cu))]),
            );
            if cq.is_none() {
                self.ops.assembly.push((l.id.clone(), comp.id.clone(), co));
            }
        }
        Ok((q, unit))
    }

    /// `_emit_actuals`: returns the quantity produced and its unit.
    fn actuals(&mut self, oid: &str, segs: &[Actual]) -> M<(f64, Option<String>)> {
        let mut produced = 0.0f64;
        let mut unit: Option<String> = None;
        for s in segs {
            for m in &s.materials {
                if m.lots.is_empty() {
                    return Err(Declined); // reported as not mapped
                }
                let made = m.use_ == Use::Produced;
                if made {
                    produced += m.quantity.filter(|q| *q != 0.0).unwrap_or(0.0);
                    if unit.is_none() {
                        unit = m.unit.clone();
                    }
                    if let Some(mat) = &m.material {
                        self.edge(oid, "FOR_MATERIAL", mat, m.origin, Vec::new());
                    }
                }
                let rel = if made { "PRODUCED" } else { "CONSUMED" };
                for lot in &m.lots {
                    let made_at = if made { text_of(&s.end) } else { None };
                    let defaults = props(vec![
                        ("quantity", Val::num(m.quantity)),
                        ("unit", Val::text(m.unit.clone())),
                        ("__produced_at", Val::text(made_at)),
                    ]);
                    self.node("Lot", lot, m.origin, None, Some(defaults), false);
                    if let Some(mat) = &m.material {
                        self.edge(lot, "FOR_MATERIAL", mat, m.origin, Vec::new());
                    }
                    let p = props(vec![
                        ("quantity", Val::num(m.quantity)),
                        ("unit", Val::text(m.unit.clone())),
                    ]);
                    self.edge(oid, rel, lot, m.origin, p);
                }
            }
            for (eids, origin) in &s.equipment {
                for eid in eids {
                    self.ops.refs.push(RefOp {
                        order: oid.to_owned(),
                        equipment: eid.clone(),
                        origin: *origin,
                        actual: true,
                        start: text_of(&s.start),
                        end: text_of(&s.end),
                    });
                }
            }
            for (pids, origin) in &s.personnel {
                for pid in pids {
                    self.edge(oid, "OPERATED_BY", pid, *origin, Vec::new());
                }
            }
        }
        Ok((produced, unit))
    }

    /// `_native_unit` and `_emit_response` of a response.
    fn response(&mut self, r: &Response, path: &str, line: u32, ctx: &Context) -> M<()> {
        let origin = self.origin(line, path);
        let status = Self::code(&self.cfg.order_status, &r.state)?;
        let seg_path = format!("{path}/SegmentResponse");
        let segs = r
            .segs
            .iter()
            .map(|s| self.actual(s, &seg_path))
            .collect::<M<Vec<_>>>()?;
        let start = self.time(&r.start)?;
        let end = self.time(&r.end)?;
        let (site, _) = self.chain(ctx)?;
        let (produced, unit) = self.actuals(&r.oid, &segs)?;
        let actual_start = start.or_else(|| pick(segs.iter().filter_map(|s| s.start.clone()), false));
        let actual_end = end.or_else(|| pick(segs.iter().filter_map(|s| s.end.clone()), true));
        let status = status.unwrap_or_else(|| if actual_end.is_some() { "completed" } else { "running" }.to_owned());
        let mut p = props(vec![
            ("actual_start", Val::text(text_of(&actual_start))),
            ("actual_end", Val::text(text_of(&actual_end))),
            ("status", Val::Str(status)),
        ]);
        let defaults = props(vec![
            ("planned_start", Val::text(text_of(&actual_start))),
            (
                "planned_end",
                Val::text(text_of(&actual_end).or_else(|| text_of(&actual_start))),
            ),
            ("quantity", Val::num((produced != 0.0).then_some(produced))),
            ("unit", Val::text(unit)),
            ("plant", Val::text(site)),
        ]);
        if let Some(s) = &self.sender {
            p.push(("source_system".to_owned(), Val::Str(s.clone())));
        }
        self.node("ProductionOrder", &r.oid, origin, Some(p), Some(defaults), true);
        Ok(())
    }

    /// `_native_unit`, `_emit_plain_request`, `_emit_request` and `_emit_requirements` of a request.
    fn request(&mut self, r: &Request, path: &str, line: u32, ctx: &Context) -> M<()> {
        let origin = self.origin(line, path);
        let status = Self::code(&self.cfg.order_status, &r.state)?;
        let req_path = format!("{path}/SegmentRequirement");
        let segs = r
            .segs
            .iter()
            .map(|s| self.required(s, &req_path))
            .collect::<M<Vec<_>>>()?;
        let valid_from = match self.time(&r.valid_from)? {
            Some(t) => Some(t),
            None => self.time(&ctx.published)?,
        };
        let valid_to = self.time(&r.valid_to)?;
        let planned_start = match self.time(&r.start)? {
            Some(t) => Some(t),
            None => match pick(segs.iter().filter_map(|s| s.earliest.clone()), false) {
                Some(t) => Some(t),
                None => self.time(&ctx.start)?,
            },
        };
        let planned_end = match self.time(&r.end)? {
            Some(t) => Some(t),
            None => match pick(segs.iter().filter_map(|s| s.latest.clone()), true) {
                Some(t) => Some(t),
                None => self.time(&ctx.end)?,
            },
        };
        let mut p = props(vec![
            ("name", Val::text(r.name.clone())),
            ("valid_from", Val::text(text_of(&valid_from))),
            ("valid_to", Val::text(text_of(&valid_to))),
        ]);
        if let Some(s) = &self.sender {
            p.push(("source_system".to_owned(), Val::Str(s.clone())));
        }
        p.push(("planned_start".to_owned(), Val::text(text_of(&planned_start))));
        p.push(("planned_end".to_owned(), Val::text(text_of(&planned_end))));
        let defaults = status.map(|s| props(vec![("status", Val::Str(s))]));
        let (site, deepest) = self.chain(ctx)?;
        let mut seen: Vec<String> = Vec::new();
        for op in segs.iter().flat_map(|s| s.ops.iter()) {
            if !seen.contains(op) {
                seen.push(op.clone());
            }
        }
        if !seen.is_empty() {
            set(&mut p, "operations", Val::List(seen));
        }
        set(&mut p, "plant", Val::text(site));
        let mut qty = 0.0f64;
        let mut unit: Option<String> = None;
        let mut material: Option<String> = None;
        for s in &segs {
            for m in &s.materials {
                if let Some(q) = m.quantity {
                    qty += q;
                }
                if unit.is_none() {
                    unit = m.unit.clone();
                }
                if let Some(mat) = &m.material {
                    match &material {
                        None => material = Some(mat.clone()),
                        Some(have) if have != mat => return Err(Declined), // reported as not mapped
                        Some(_) => {}
                    }
                }
                if !m.lots.is_empty() {
                    return Err(Declined); // planned lots: reported as not mapped
                }
            }
            for (eids, eo) in &s.equipment {
                for eid in eids {
                    self.ops.refs.push(RefOp {
                        order: r.oid.clone(),
                        equipment: eid.clone(),
                        origin: *eo,
                        actual: false,
                        start: None,
                        end: None,
                    });
                }
            }
        }
        if qty > 0.0 {
            set(&mut p, "quantity", Val::Num(qty));
        }
        set(&mut p, "unit", Val::text(unit));
        if let Some((eid, cls)) = &deepest {
            if cls == "Line" || cls == "Machine" {
                self.ops.refs.push(RefOp {
                    order: r.oid.clone(),
                    equipment: eid.clone(),
                    origin,
                    actual: false,
                    start: None,
                    end: None,
                });
            }
        }
        self.node("ProductionOrder", &r.oid, origin, Some(p), defaults, true);
        if let Some(mat) = &material {
            self.edge(&r.oid, "FOR_MATERIAL", mat, origin, Vec::new());
        }
        Ok(())
    }
}

/// The calls for a message the reader took, or Declined.
pub fn map_message(msg: &Message, cfg: &MapConfig, tz: Option<i32>) -> Result<Ops, Declined> {
    let mut m = Mapper {
        cfg,
        tz,
        sender: msg.sender.clone(),
        ops: Ops::default(),
        path_index: HashMap::new(),
        origin_index: HashMap::new(),
    };
    for unit in &msg.units {
        let ctx = &msg.contexts[unit.context];
        match &unit.body {
            UnitBody::Lot(l) => {
                m.lot(l, &unit.path, true)?;
            }
            UnitBody::Response(r) => m.response(r, &unit.path, unit.line, ctx)?,
            UnitBody::Request(r) => m.request(r, &unit.path, unit.line, ctx)?,
        }
    }
    m.ops.units = msg.units.len();
    Ok(m.ops)
}
