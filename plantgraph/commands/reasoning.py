"""CLI of the built-in analyses: ``trace``, ``risk``, ``rootcause``, ``sop`` and ``rules``.

Every data command has ``--json`` (the pydantic result model as JSON, the same as the API's
response), ``--store PATH`` (an embedded store folder; default: the configured store) and
``--as-of T`` (the graph as it was at T).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from config.settings import get_settings
from reasoning.errors import ReasoningError
from reasoning.results import RiskBoard, RootCauseResult, SopInEffectResult, TraceResult
from reasoning.rule_model import load_rules, parse_duration
from reasoning.service import DEFAULT_MAX_DEPTH, DEFAULT_MAX_RESULTS, Analyses
from store.base import GraphStore, StoreError

console = Console()
err_console = Console(stderr=True)
M = TypeVar("M", bound=BaseModel)

StoreOpt = Annotated[Path | None, typer.Option("--store", help="Embedded store folder (default: configured).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Query the graph as it was at this ISO time.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result model as JSON.")]
RulesOpt = Annotated[list[Path] | None, typer.Option("--rules-dir", help="Extra folder of rule files.")]
PreciseOpt = Annotated[bool, typer.Option("--lot-precise", help="Follow DERIVED_FROM links where recorded.")]
NowOpt = Annotated[str | None, typer.Option(
    "--now", help="The plant's current time (default: PLANTGRAPH_NOW, else the clock).")]
DepthOpt = Annotated[int, typer.Option("--max-depth", min=1, help="Bound of variable-length genealogy.")]
ResultsOpt = Annotated[int, typer.Option("--max-results", min=1, help="Most results per rule variable.")]


class _Fail(Exception):
    pass


def parse_time(text: str | None, option: str) -> datetime | None:
    """ISO-8601 with an offset; a clear error naming the option otherwise."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"expected an ISO-8601 time such as 2026-03-02T06:00:00+01:00, got {text!r}",
                                 param_hint=option) from None
    if t.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no time zone; add an offset such as Z or +01:00",
                                 param_hint=option)
    return t


def parse_rule_params(spec: Mapping[str, str], items: Sequence[str] | None) -> dict[str, Any]:
    """``--param NAME=VALUE`` options typed by the rule's declared parameter kinds."""
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or key not in spec:
            raise typer.BadParameter(f"expected NAME=VALUE with NAME one of {sorted(spec)}, "
                                     f"got {item!r}", param_hint="--param")
        kind = spec[key]
        if kind in ("ids", "strings"):
            values[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif kind == "datetime":
            values[key] = parse_time(value, f"--param {key}")
        elif kind == "number":
            try:
                values[key] = float(value)
            except ValueError:
                raise typer.BadParameter(f"{key} must be a number, got {value!r}",
                                         param_hint="--param") from None
        else:
            values[key] = value
    return values


def _open(store_path: Path | None) -> GraphStore:
    if store_path is not None:
        if not store_path.exists():
            raise _Fail(f"no store at {store_path} (load a bundle first: plantgraph load BUNDLE --store PATH)")
        from store.factory import open_store

        return open_store("embedded", store_path)
    settings = get_settings()
    if settings.backend == "embedded" and not settings.store_path.exists():
        raise _Fail(f"no store at {settings.store_path} (set PLANTGRAPH_STORE or pass --store)")
    from config.runtime import open_configured_store

    return open_configured_store(settings)


def configured_rules_dirs(extra: list[Path] | None) -> list[Path]:
    """PLANTGRAPH_RULES_DIR first, then the command's own ``--rules-dir`` folders."""
    dirs = list(extra or [])
    configured = getattr(get_settings(), "rules_dir", None)
    if configured is not None:
        dirs.insert(0, Path(configured))
    return dirs


@contextmanager
def _analyses(store_path: Path | None, now: datetime | None = None, rules_dir: list[Path] | None = None,
              max_depth: int = DEFAULT_MAX_DEPTH, max_results: int = DEFAULT_MAX_RESULTS) -> Iterator[Analyses]:
    try:
        store = _open(store_path)
    except (StoreError, _Fail) as e:
        err_console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    try:
        yield Analyses(store, now=now or get_settings().now, rules_dirs=configured_rules_dirs(rules_dir),
                       max_depth=max_depth, max_results=max_results)
    finally:
        store.close()


def _run(fn: Callable[[], M]) -> M:
    try:
        return fn()
    except (ReasoningError, ValueError, StoreError) as e:
        err_console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None


def _emit(model: BaseModel, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        typer.echo(model.model_dump_json(indent=2))
    else:
        human()


# ---------------------------------------------------------------------------------------------
# human-readable output
# ---------------------------------------------------------------------------------------------

def _print_trace(r: TraceResult) -> None:
    console.print(f"[bold]{r.analysis}[/bold] from {', '.join(r.start_ids)}  ({r.direction}, {r.mode}"
                  f"{', as of ' + r.as_of.isoformat() if r.as_of else ''})")
    if r.window_from:
        console.print(f"window: {r.window_from.isoformat()} .. {r.window_to.isoformat() if r.window_to else ''}")
    if r.start_lots and r.analysis != "trace_lot":
        console.print(f"start lots: {', '.join(r.start_lots)}")
    t = Table("class", "id", "depth", "quantity", "status / via", "evidence (first path)")
    for cls, group in r.reached.items():
        for e in group:
            path = e.evidence[0] if e.evidence else None
            shown = " ".join(
                f"{'-' if s.direction == 'out' else '<-'}{s.rel}{'->' if s.direction == 'out' else '-'} {s.dst}"
                for s in (path.steps if path else [])[-3:])
            qty = f"{e.quantity:g} {e.unit or ''}" if e.quantity is not None else ""
            tag = " / ".join(x for x in (e.entity.status, e.via, "shipped" if e.shipped else None) if x)
            t.add_row(cls, e.entity.id, str(e.depth), qty, tag, shown)
    console.print(t)
    if r.direction == "forward":
        console.print(f"shipped lots: {', '.join(r.shipped_lots) or '-'}")
        console.print(f"in-house lots: {', '.join(r.in_house_lots) or '-'}")
        console.print(f"customers: {', '.join(c.entity.id for c in r.customers) or '-'}")
    if r.caps.truncated:
        console.print(f"[yellow]truncated:[/yellow] {'; '.join(r.caps.notes)}")


def _print_risk(b: RiskBoard) -> None:
    console.print(f"[bold]delivery risk[/bold] now {b.now.isoformat()}, horizon {b.horizon_days:g} days"
                  f"{', plant ' + b.plant if b.plant else ''}: {len(b.at_risk)} of {b.lines_considered} lines at risk")
    t = Table("line", "customer", "due", "level", "score", "slack h", "causes", "options")
    for ln in b.lines:
        t.add_row(ln.line.id, ln.customer.id if ln.customer else "", ln.due_date.date().isoformat(), ln.level,
                  f"{ln.score:.2f}", f"{ln.slack_hours:.0f}" if ln.slack_hours is not None else "?",
                  "; ".join(f"{c.kind}:{c.entity.id}" for c in ln.causes),
                  "; ".join(f"{o.kind}:{o.entity.id}" for o in ln.options[:3]))
    console.print(t)


def _print_rootcause(r: RootCauseResult) -> None:
    console.print(f"[bold]root cause[/bold] for {len(r.bad_lots)} bad lots vs {len(r.good_lots)} comparable "
                  f"good lots of {', '.join(r.materials)}")
    t = Table("rank", "class", "factor", "bad", "good", "support", "lift", "p-value")
    for f in r.factors[:20]:
        t.add_row(str(f.rank), f.factor_class, f.factor.id, f"{f.bad_with}/{f.bad_total}",
                  f"{f.good_with}/{f.good_total}", f"{f.support:.2f}", f"{f.lift:.2f}", f"{f.p_value:.3g}")
    console.print(t)


def _print_sop(r: SopInEffectResult) -> None:
    console.print(f"[bold]SOP in effect[/bold] for {r.order.id} at {r.at.isoformat() if r.at else '?'}: "
                  f"{r.sop_version or 'none'}")
    for m in r.in_effect:
        console.print(f"  {m.version.id} of {m.sop.id} (via {m.applies_via} {m.applies_to}, from "
                      f"{m.effective_from.isoformat()}): {m.text_excerpt}")
    if r.used_version:
        console.print(f"used: {r.used_version.id}")
    if r.superseded:
        console.print(f"[red]superseded:[/red] {r.superseded_detail}")


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

def register(app: typer.Typer) -> None:
    trace_app = typer.Typer(help="Forward impact and backward genealogy, with evidence paths.",
                            no_args_is_help=True)
    rules_app = typer.Typer(help="The rules the analyses run (built-in and user rule files).",
                            no_args_is_help=True)
    app.add_typer(trace_app, name="trace")
    app.add_typer(rules_app, name="rules")

    @trace_app.command("lot")
    def trace_lot(lot_id: str, backward: Annotated[bool, typer.Option("--backward", help="Where-from.")] = False,
                  lot_precise: PreciseOpt = False, store: StoreOpt = None, as_of: AsOfOpt = None,
                  json_out: JsonOpt = False, rules_dir: RulesOpt = None, max_depth: DepthOpt = DEFAULT_MAX_DEPTH,
                  max_results: ResultsOpt = DEFAULT_MAX_RESULTS) -> None:
        """Forward impact of a lot (or --backward: where it came from)."""
        t = parse_time(as_of, "--as-of")
        with _analyses(store, None, rules_dir, max_depth, max_results) as a:
            if backward:
                r = _run(lambda: a.backward(lot_id, t, lot_precise))
            else:
                r = _run(lambda: a.trace_lot(lot_id, t, lot_precise))
        _emit(r, json_out, lambda: _print_trace(r))

    @trace_app.command("hold")
    def trace_hold(hold_id: str, lot_precise: PreciseOpt = False, store: StoreOpt = None, as_of: AsOfOpt = None,
                   json_out: JsonOpt = False, rules_dir: RulesOpt = None,
                   max_depth: DepthOpt = DEFAULT_MAX_DEPTH, max_results: ResultsOpt = DEFAULT_MAX_RESULTS) -> None:
        """Impact of a quality hold: the held lots traced forward to customers."""
        t = parse_time(as_of, "--as-of")
        with _analyses(store, None, rules_dir, max_depth, max_results) as a:
            r = _run(lambda: a.trace_hold(hold_id, t, lot_precise))
        _emit(r, json_out, lambda: _print_trace(r))

    @trace_app.command("machine")
    def trace_machine(machine_id: str,
                      start: Annotated[str, typer.Option("--from", help="Window start (ISO time).")],
                      end: Annotated[str, typer.Option("--to", help="Window end, exclusive (ISO time).")],
                      lot_precise: PreciseOpt = False, store: StoreOpt = None, as_of: AsOfOpt = None,
                      json_out: JsonOpt = False, rules_dir: RulesOpt = None,
                      max_depth: DepthOpt = DEFAULT_MAX_DEPTH,
                      max_results: ResultsOpt = DEFAULT_MAX_RESULTS) -> None:
        """Orders that ran on a machine in [from, to), their lots, onward to customers."""
        lo, hi, t = parse_time(start, "--from"), parse_time(end, "--to"), parse_time(as_of, "--as-of")
        assert lo is not None and hi is not None
        with _analyses(store, None, rules_dir, max_depth, max_results) as a:
            r = _run(lambda: a.trace_machine(machine_id, lo, hi, t, lot_precise))
        _emit(r, json_out, lambda: _print_trace(r))

    @trace_app.command("incident")
    def trace_incident(incident_id: str, lot_precise: PreciseOpt = False, store: StoreOpt = None,
                       as_of: AsOfOpt = None, json_out: JsonOpt = False, rules_dir: RulesOpt = None,
                       max_depth: DepthOpt = DEFAULT_MAX_DEPTH,
                       max_results: ResultsOpt = DEFAULT_MAX_RESULTS) -> None:
        """Impact of an incident: the lots/orders it concerns, or its machine's suspect window."""
        t = parse_time(as_of, "--as-of")
        with _analyses(store, None, rules_dir, max_depth, max_results) as a:
            r = _run(lambda: a.trace_incident(incident_id, t, lot_precise))
        _emit(r, json_out, lambda: _print_trace(r))

    @app.command("risk")
    def risk(horizon: Annotated[str, typer.Option("--horizon", help="How far ahead, e.g. 14d or 36h.")] = "14d",
             plant: Annotated[str | None, typer.Option("--plant", help="Only this plant (Site id).")] = None,
             now: NowOpt = None, store: StoreOpt = None, as_of: AsOfOpt = None, json_out: JsonOpt = False,
             rules_dir: RulesOpt = None) -> None:
        """Open sales order lines due within the horizon, scored, with causes, slack and options."""
        try:
            days = parse_duration(horizon).total_seconds() / 86400
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--horizon") from None
        t_now, t = parse_time(now, "--now"), parse_time(as_of, "--as-of")
        with _analyses(store, t_now, rules_dir) as a:
            b = _run(lambda: a.risk(days, plant, t, t_now))
        _emit(b, json_out, lambda: _print_risk(b))

    @app.command("rootcause")
    def rootcause(lots: Annotated[str | None, typer.Option("--lots", help="Bad lot ids, comma-separated.")] = None,
                  incident: Annotated[str | None, typer.Option("--incident", help="An incident id.")] = None,
                  store: StoreOpt = None, as_of: AsOfOpt = None, json_out: JsonOpt = False,
                  rules_dir: RulesOpt = None) -> None:
        """Factors shared by bad lots' histories, ranked by lift and Fisher's exact test."""
        if not lots and not incident:
            raise typer.BadParameter("give --lots ID,ID,... or --incident ID", param_hint="--lots/--incident")
        ids = [x.strip() for x in (lots or "").split(",") if x.strip()]
        t = parse_time(as_of, "--as-of")
        with _analyses(store, None, rules_dir) as a:
            r = _run(lambda: a.rootcause(ids, incident, t))
        _emit(r, json_out, lambda: _print_rootcause(r))

    @app.command("sop")
    def sop(order: Annotated[str, typer.Option("--order", help="Production order id.")],
            machine: Annotated[str | None, typer.Option("--machine", help="Machine id.")] = None,
            at: Annotated[str | None, typer.Option("--at", help="Time (default: the order's start).")] = None,
            now: NowOpt = None, store: StoreOpt = None, as_of: AsOfOpt = None, json_out: JsonOpt = False,
            rules_dir: RulesOpt = None) -> None:
        """The SOP version in effect for an order (and machine) at its production time."""
        t_at, t_now, t = parse_time(at, "--at"), parse_time(now, "--now"), parse_time(as_of, "--as-of")
        with _analyses(store, t_now, rules_dir) as a:
            r = _run(lambda: a.sop_in_effect(order, machine, t_at, t))
        _emit(r, json_out, lambda: _print_sop(r))

    @rules_app.command("list")
    def rules_list(rules_dir: RulesOpt = None, json_out: JsonOpt = False) -> None:
        """Every rule with its file and description."""
        try:
            rs = load_rules(configured_rules_dirs(rules_dir))
        except ReasoningError as e:
            err_console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        if json_out:
            import json

            typer.echo(json.dumps([{"name": r.name, "source": r.source, "line": r.line,
                                    "params": r.params, "returns": list(r.returns),
                                    "description": r.description} for r in rs], indent=2))
            return
        t = Table("rule", "params", "returns", "description")
        for r in rs:
            t.add_row(r.name, ", ".join(f"{k}:{v}" for k, v in r.params.items()), ", ".join(r.returns),
                      r.description)
        console.print(t)

    @rules_app.command("show")
    def rules_show(name: str, rules_dir: RulesOpt = None, json_out: JsonOpt = False) -> None:
        """One rule: its source file and line, and its pattern."""
        try:
            rule = load_rules(configured_rules_dirs(rules_dir))[name]
        except ReasoningError as e:
            err_console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        if json_out:
            typer.echo(rule.model_dump_json(indent=2, by_alias=True, exclude_none=True))
            return
        console.print(f"[bold]{rule.name}[/bold]  ({rule.source}:{rule.line})")
        console.print(rule.description)
        console.print_json(rule.model_dump_json(by_alias=True, exclude_none=True,
                                                exclude={"name", "description", "source", "line"}))

    @rules_app.command("run")
    def rules_run(name: str,
                  param: Annotated[list[str] | None, typer.Option(
                      "--param", "-p", help="NAME=VALUE; ids are comma-separated.")] = None,
                  store: StoreOpt = None, as_of: AsOfOpt = None, json_out: JsonOpt = False,
                  rules_dir: RulesOpt = None, max_depth: DepthOpt = DEFAULT_MAX_DEPTH,
                  max_results: ResultsOpt = DEFAULT_MAX_RESULTS) -> None:
        """Run one rule by name, e.g. ``rules run lots_to_customers -p lots=LOT-1,LOT-2``."""
        t = parse_time(as_of, "--as-of")
        with _analyses(store, None, rules_dir, max_depth, max_results) as a:
            rule = _run(lambda: a.rules[name])
            values = parse_rule_params(rule.params, param)
            r = _run(lambda: a.run_rule(name, values, t))
        if json_out:
            typer.echo(r.model_dump_json(indent=2))
            return
        t_ = Table("variable", "id", "class", "depth", "evidence")
        for var, group in r.bindings.items():
            for e in group:
                path = e.evidence[0].nodes if e.evidence else []
                t_.add_row(var, e.entity.id, e.entity.cls, str(e.depth), " > ".join(path))
        console.print(t_)
        if r.missing_starts:
            console.print(f"[yellow]not found / not matching start:[/yellow] {', '.join(r.missing_starts)}")

    @rules_app.command("check")
    def rules_check(paths: list[Path]) -> None:
        """Validate rule files (or folders of them) against the ontology."""
        from reasoning.rule_model import load_rule_file

        n = 0
        try:
            for p in paths:
                files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
                for f in files:
                    n += len(load_rule_file(f))
        except ReasoningError as e:
            err_console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        console.print(f"{n} rules OK")
