"""Run every benchmark: each ``benchmarks/bench_*.py`` module's ``main()`` with its default
arguments (``make bench``). Each prints its table and writes ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    names = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    argv = sys.argv
    try:
        for name in names:
            print(f"== benchmarks.{name}", flush=True)
            sys.argv = [f"benchmarks.{name}"]  # each benchmark parses its own defaults
            importlib.import_module(f"benchmarks.{name}").main()
    finally:
        sys.argv = argv


if __name__ == "__main__":
    main()
