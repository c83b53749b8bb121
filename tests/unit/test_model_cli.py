"""``python -m model``: help for every command, evaluate's exit status and output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model.__main__ import main
from model.artifact import (
    DEFAULT_ARTIFACT,
    METADATA_FILE,
    WEIGHTS_FILE,
    build_metadata,
    file_sha256,
    load_artifact,
)
from model.numpy_lstm import LstmWeights


def reseal_with_weights(directory: Path, weights: LstmWeights) -> None:
    """Replace weights.npz and make the metadata describe it (a valid but different artifact)."""
    np.savez(directory / WEIGHTS_FILE, **weights.to_arrays())
    meta = json.loads((directory / METADATA_FILE).read_text())
    meta["files"][WEIGHTS_FILE] = file_sha256(directory / WEIGHTS_FILE)
    fresh = build_metadata(weights, meta["files"])
    meta["version"], meta["weights_sha256"] = fresh["version"], fresh["weights_sha256"]
    (directory / METADATA_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("train", "--seed"),
        ("evaluate", "ARTIFACT"),
        ("bench", "--batch-sizes"),
        ("robustness", "--seeds"),
    ],
)
def test_every_command_has_help(command: str, expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert expected in capsys.readouterr().out


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\nfrom model.__main__ import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_evaluate_committed_artifact_passes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "model", "evaluate"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "accuracy   1.000000" in out.stdout
    assert "1,048,576" in out.stdout and "PASS" in out.stdout


def test_evaluate_exits_non_zero_below_the_bar(tmp_path: Path, capsys) -> None:
    target = tmp_path / "flipped"
    shutil.copytree(DEFAULT_ARTIFACT, target)
    arrays = load_artifact(target).weights.to_arrays()
    # Negating the output layer flips every decision: a valid artifact with accuracy 0.
    arrays["dense_kernel"] = -arrays["dense_kernel"]
    arrays["dense_bias"] = -arrays["dense_bias"]
    reseal_with_weights(target, LstmWeights.from_arrays(arrays))
    assert main(["evaluate", str(target)]) == 1
    out = capsys.readouterr().out
    assert "accuracy   0.000000" in out and "FAIL" in out


def test_evaluate_missing_artifact_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_arguments_are_rejected(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench", "--batch-sizes", "0,x"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["train", "--units", "0"])
