"""Predictor throughput vs naive per-row model.predict; same as ``python -m model bench``.

Run from the repository root: ``.venv/bin/python benchmarks/bench_model.py [--help]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.__main__ import main  # noqa: E402 - needs the repo root on sys.path first

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
