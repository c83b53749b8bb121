"""The README's main command runs to completion (short duration) and reports success."""

from __future__ import annotations

import subprocess

from tests.integration.kafka_helpers import REPO, proc_env


def test_make_demo_runs_to_completion(kafka_bootstrap):
    res = subprocess.run(
        ["make", "demo", "DURATION=6"],
        cwd=REPO,
        env=proc_env(kafka_bootstrap),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "demo OK" in res.stdout
    assert "accuracy 1.000000" in res.stdout
    summary = [line for line in res.stdout.splitlines() if line.startswith("summary:")]
    assert summary, res.stdout[-2000:]
    rows_in = int(summary[0].split()[1])
    assert rows_in > 0
