"""Print the README's benchmark table from bench/results/*.json (the measured figures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _fresh(scale: dict[str, Any], name: str) -> str:
    """Median / max of a live-alert probe set (older results held one probe: inbox / push)."""
    if f"{name}_s_max" in scale:
        return f"{scale[f'{name}_s']} / {scale[f'{name}_s_max']}"
    if name == "fresh_alert_during_burst" and "fresh_alert_inbox_s" in scale:
        return f"{scale['fresh_alert_inbox_s']} / {scale['fresh_alert_push_s']} (inbox / push)"
    return "not measured"


def _load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _uplink_rows(up: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The shaped-link figures, with the unshaped run's beside them when it was run."""
    out: list[tuple[str, str, str, str]] = []
    if "first_frame_cold_s" in up:
        link = f"{up['uplink_mbps']:g} Mbit/s, {up['rtt_ms']:.0f} ms RTT, {up['cameras']} cameras"
        if "policy" in up:
            link += f", policy {up['policy']}"
        loop = up.get("unshaped")

        def both(key: str, fmt: str = "{}") -> str:
            """The shaped figure, and the unshaped one beside it when it was run."""
            shaped = fmt.format(up[key])
            return f"{shaped} (unshaped {fmt.format(loop[key])})" if loop else shaped

        backlog = up.get("backlog", {}).get("minutes")
        after = f" during a {backlog:g}-min outage backlog" if backlog else ""
        out += [
            ("uplink", f"click → first fragment, cold / warm (s), {link}, archive running",
             f"{both('first_frame_cold_s')} / {both('first_frame_warm_s')}", "≤ 1.0 / ≤ 0.3"),
            ("uplink", "archive bytes still arriving after a click (s)",
             both("archive_pause_s"), "≤ 1"),
            ("uplink", f"archive Mbit/s with nobody watching; footage hours archived per hour"
             f"{after}", f"{both('archive_mbps_idle')}; {both('catch_up_hours_per_hour')}",
             "catch-up > 1"),
        ]  # fmt: skip
    return out


def _scale_rows(scale: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The rows of bench/scale.py and bench/viewers.py (both write scale.json)."""
    out: list[tuple[str, str, str, str]] = []
    pgr = scale.get("postgresql", {})
    if "sites" in scale:
        engines = "SQLite" + (" and PostgreSQL side by side" if pgr else "")
        size = (
            f"{scale['sites']} sites, {scale['alerts_in_db']:,} alerts, "
            f"{scale['health_rows']:,} health rows, {scale['nodes']} node ({engines})"
        )
        if "load_avg_steady" in scale:
            size += ", 1-min load at the end of the steady load " + (
                f"{scale['load_avg_steady'][0]:g}; PostgreSQL {pgr['load_avg_steady'][0]:g}"
                if "load_avg_steady" in pgr
                else f"{scale['load_avg_steady'][0]:g}"
            )

        def both(fig: Any) -> str:
            """SQLite's figure, and PostgreSQL's beside it when that run is in the file."""
            return f"{fig(scale)}; PostgreSQL {fig(pgr)}" if pgr else str(fig(scale))

        out += [
            ("scale", f"ingest lag p95 (s) under steady load, {size}",
             both(lambda r: r["ingest_lag_p95_s"]), "≤ 1"),
            ("scale", "city wall (5,000 cameras) / county wall, median (s), at once with the "
             "90-day report", both(lambda r: f"{r['wall_s_city']} / {r['wall_s_county']}"),
             "≤ 0.5"),
            ("scale", "city 90-day report, median (s)", both(lambda r: r["report_90d_s_city"]),
             "≤ 2"),
            ("scale", f"live alert during a {scale['burst_events']:,}-event burst → inbox and "
             "push, median / max of the probes (s)",
             both(lambda r: _fresh(r, "fresh_alert_during_burst")), "≤ 1"),
            ("scale", "live alert while another process writes 2 s in 5 (SQLite: its write lock; "
             "PostgreSQL: the lock numbering event changes), median / max (s)",
             both(lambda r: _fresh(r, "fresh_alert_during_foreign_writes")), "—"),
            ("scale", "pushes lost (a second process writing meanwhile)",
             both(lambda r: f"{r['pushes_lost']} of {r['pushes_wanted']}"), "0"),
        ]  # fmt: skip
    if "viewers_one_core_measured" in scale:
        view = scale["viewers_one_core_detail"]
        stop = view.get("stopped_at")
        out.append(
            ("scale", "WebSocket viewers of one 1080p stream that one relay core holds, measured "
             "(viewers on the other core)",
             f"{scale['viewers_one_core_measured']}"
             + (f" (fell behind at {stop})" if stop else " (the largest step tried)"), "≥ 500"),
        )  # fmt: skip
    return out


def _province_rows(prov: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """bench/province.py (the `province` key of scale.json): nodes on PostgreSQL, one killed."""
    if "node_kill_lost_events" not in prov:
        return []
    load = prov["load_avg_before_kill"]
    size = (
        f"{prov['sites']:,} sites ({prov['alerts_per_site_hour']:g} events/site·h) on "
        f"{prov['nodes']} nodes + PostgreSQL, one node killed (kill -9) mid-run, load "
        f"{load[0]:g} on {prov['machine']['cores']} cores shared by all of it"
    )
    nodes = {k: v for k, v in prov["cpu_percent_of_core_before_kill"].items() if "node" in k}
    return [
        ("province", f"events lost / stored twice / alerts missing, {size}",
         f"{prov['node_kill_lost_events']} of {prov['events_published']:,} / "
         f"{prov['duplicates_stored']} / {prov['alerts_missing']}", "0 / 0 / 0"),
        ("province", "ingest lag p50 / p95 (s), before the kill; after it",
         f"{prov['ingest_lag_p50_s_before_kill']} / {prov['ingest_lag_p95_s_before_kill']}; "
         f"{prov['ingest_lag_p50_s_after_kill']} / {prov['ingest_lag_p95_s_after_kill']}",
         "≤ 1 (p95)"),
        ("province", "killed node's leases and broker sessions taken over (s)",
         str(prov["lease_takeover_s"]), ""),
        ("province", "CPU per node (% of one core) before the kill; PostgreSQL",
         f"{' / '.join(str(v) for v in nodes.values())}; "
         f"{prov['cpu_percent_of_core_before_kill']['postgresql']}", ""),
    ]  # fmt: skip


def _broker_rows(broker: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """bench/broker.py: one Mosquitto under each fleet size it stepped through."""
    steps = broker.get("steps", [])
    if not steps:
        return []

    def each(fmt: str) -> str:
        return "; ".join(f"{s['sites']:,}: " + fmt.format(**s) for s in steps)

    hb, ev = broker["heartbeat_s"], broker["events_per_site_hour"]
    rate = f"heartbeat every {hb:g} s, {ev:g} events/h"
    return [
        ("broker", f"one Mosquitto, sites ({rate} each): CPU (% of one core) / RSS (MB)",
         each("{broker_cpu_percent_of_core} % / {broker_rss_mb}"), "one broker holds 5,000"),
        ("broker", "whole fleet connecting / reconnect storm after a broker restart, until central "
         "has every site back (s)", each("{connect_all_s} / {reconnect_storm_s}"), ""),
        ("broker", "site → central latency, p50 / p95 / max (ms)",
         each("{latency_p50_ms} / {latency_p95_ms} / {latency_max_ms}"), ""),
        ("broker", "events lost (QoS 1, restart included); heartbeats lost (QoS 0)",
         each("{events_lost} of {events_sent}; {heartbeats_lost} of {heartbeats_in_window}"),
         "0; —"),
    ]  # fmt: skip


def _ratio(rec: dict[str, Any]) -> str:
    """The recorder's CPU ratio: the median of the repeated runs where there were several."""
    repeats = rec.get("repeats", [])
    if len(repeats) > 1:
        runs = ", ".join(str(r["cpu_ratio_vs_ffmpeg"]) for r in repeats)
        head = f"{rec['cpu_ratio_vs_ffmpeg_median']} (median of {runs}"
    else:
        head = f"{rec['cpu_ratio_vs_ffmpeg']} ("
    bare = rec.get("cpu_ratio_vs_ffmpeg_without_sealing", "?")
    sep = "; " if len(repeats) > 1 else ""
    return f"{head}{sep}{bare} without fsync + indexing; SHA-256 taken while writing)"


def rows() -> list[tuple[str, str, str, str]]:
    """(area, figure, measured, target) rows."""
    rec, det, ing, vid = _load("record"), _load("detect"), _load("ingest"), _load("video")
    sub = _load("sub_stream")
    out: list[tuple[str, str, str, str]] = []
    if rec:
        out += [
            ("recording", "streams of 1080p H.264 recorded at once", str(rec["streams"]), "32"),
            ("recording", "CPU per stream (% of one core)", f"{rec['cpu_percent_per_stream']}",
             "half the box free at 32"),
            ("recording", "CPU vs `ffmpeg -c copy -f segment` (ratio)", _ratio(rec), "≤ 1.0"),
            ("recording", "lost packets", str(rec.get("lost_packets_max", rec["lost_packets"])),
             "0"),
        ]  # fmt: skip
    modes = ("native", "native-unhashed", "native-unfragmented")
    native = [_load(f"record_copy_{m}") for m in modes]
    if all(native):
        out.append(
            ("recording", "a copy loop in C on ffmpeg's own FFmpeg, CPU vs ffmpeg: our output "
             "(fragmented MP4, SHA-256 while writing) / the same unhashed / unfragmented and "
             "unhashed as ffmpeg writes (median of 3 each)",
             " / ".join(str(n["cpu_ratio_vs_ffmpeg_median"]) for n in native), "—")
        )  # fmt: skip
    if det:
        ms, be = det["ms_per_frame"], det.get("backends", {})

        def cpu(key: str) -> str:
            return str(be.get(key, {}).get("cpu_ms_per_frame", "?"))

        acc = det.get("accuracy", {})
        old = acc.get("fall-yolov8s", {})
        runs = det.get("capacity_runs", {})
        measured = ", ".join(
            f"{n}: {r['analysed_fps_median']} fps"
            for n, r in sorted(runs.items(), key=lambda i: -int(i[0]))
        )
        out += [
            ("detection", "CPU ms/frame, default NanoDet-m / former YOLOv8s (1 thread)",
             f"{cpu('nanodet_threads_1')} / {cpu('onnx_threads_1')}", ""),
            ("detection", "ms/frame, ultralytics `.pt`, 2 threads",
             str(ms.get("ultralytics_threads_2")), ""),
            ("detection", "person precision / recall, default (former) model",
             f"{det.get('person_precision')} / {det.get('person_recall')} "
             f"({old.get('person_precision')} / {old.get('person_recall')})", ""),
            ("detection", "shipped preset rules working / partial / blind",
             f"{det.get('rules_working')} / {det.get('rules_partial')} / {det.get('rules_blind')}",
             "all working"),
            ("detection", "static scene frames skipped by the motion gate",
             f"{det['static_skip_fraction']:.1%}", ""),
            ("detection", "frame → event latency (s)", str(det["frame_to_event_s"]), ""),
            ("detection", "cameras at 1 fps, computed from CPU cost / measured",
             f"{det['cameras_at_1fps']} / {det.get('cameras_at_1fps_measured')}"
             + (f" (median analysed fps with N cameras: {measured})" if measured else ""), "16"),
        ]  # fmt: skip
    if sub:
        two, one = sub["two_sessions"], sub["shared"]
        out += [
            ("detection", "sub stream: RTSP sessions and CPU (% of a core), detection + live",
             f"{one['rtsp_sessions']} session, {one['cpu_percent_of_a_core']} % "
             f"(was {two['rtsp_sessions']}, {two['cpu_percent_of_a_core']} %)", "1 session"),
        ]  # fmt: skip
    if ing:
        out += [
            ("ingest", "events/s into central's database (backlog drain / live)",
             f"{ing['events_per_s']:,.0f} / {ing.get('events_per_s_live', 0):,.0f}", "≥ 5,000"),
            ("ingest", "edge → row visible, p50 / p95 (s)",
             f"{ing['latency_p50_s']} / {ing['latency_p95_s']}", "p95 ≤ 1"),
        ]  # fmt: skip
    if vid:
        out += [
            ("video", "click → first frame, cold / warm (s)",
             f"{vid['first_frame_cold_s']} / {vid['first_frame_warm_s']}", "≤ 0.5 / ≤ 0.2"),
            ("video", "glass to glass (s)", str(vid["glass_to_glass_s"]), ""),
            ("video", "viewers of one 1080p stream per central core (upstreams)",
             f"{vid['viewers_one_core']} ({vid['upstreams']}), extrapolated from 80", ""),
            ("video", "memory per viewer (MB)", str(vid["memory_per_viewer_mb"]), ""),
            ("video", "replay seek to first frame (s), 16 cameras × 90 days indexed",
             str(vid["seek_s"]), ""),
        ]  # fmt: skip
    out += _scale_rows(_load("scale"))
    out += _province_rows(_load("scale").get("province", {}))
    out += _broker_rows(_load("broker"))
    integ = _load("integrity")
    if "tamper_cases" in integ:
        out += [
            ("integrity", "tamper cases detected (file deleted, truncated, rewritten; index "
             "rows deleted; index rebuilt)", f"{integ['detected']} / {integ['tamper_cases']}",
             "all"),
            ("integrity", f"false tamper alarms ({integ.get('kill_rounds', '?')} × kill -9, an "
             "outage, untouched segments)", str(integ["false_alarms"]), "0"),
            ("integrity", "anchor traffic per camera and day (kB)",
             f"{integ['anchor_overhead_bytes_per_camera_day'] / 1000:.0f}", ""),
            ("integrity", "scheduled audits: edge seconds per camera over 90 days",
             str(integ["audit_seconds_per_90_days"]), ""),
        ]  # fmt: skip
    out += _uplink_rows(_load("uplink"))
    mod = _load("models")
    if "train_seconds" in mod:
        ds = mod["train_dataset"]
        size = f"{ds['train_images']}+{ds['val_images']} images at {ds['imgsz']} px"
        out += [
            ("models", f"training from scratch, {size}, {ds['epochs']} epochs, {ds['device']}: "
             "seconds; val mAP50", f"{mod['train_seconds']}; {mod['val_map50']}", ""),
            ("models", f"rollout of a signed {mod['model_bytes'] / 1e6:.1f} MB model to "
             f"{mod['sites']} simulated sites (s)", str(mod["rollout_seconds_to_all_sites"]), ""),
        ]  # fmt: skip
    if "kill_loss_s_median" in integ:
        out += [
            ("outages", f"footage lost per kill -9 and restart, median / max (s), "
             f"{integ.get('kills', '?')} kills, frame counter",
             f"{integ['kill_loss_s_median']} / {integ['kill_loss_s_max']}", ""),
            ("outages", "per kill: agent down, median (s); then connect → first frame in a "
             "file, max (s)",
             f"{integ.get('kill_downtime_s_median', '?')}; "
             f"{integ.get('kill_loss_after_restart_s_max', '?')}",
             f"—; ≤ {integ.get('gop_s', '?')} (one GOP)"),
            ("outages", "per kill, connect → first frame split: RTSP handshake (connect → "
             "playing), median / max; then the camera's next keyframe, median / max (s)",
             f"{integ.get('kill_handshake_s_median', '?')} / "
             f"{integ.get('kill_handshake_s_max', '?')}; "
             f"{integ.get('kill_keyframe_wait_s_median', '?')} / "
             f"{integ.get('kill_keyframe_wait_s_max', '?')}",
             f"—; < {integ.get('gop_s', '?')} (one GOP)"),
            ("outages", "kills without a gap row; index hole vs true loss, worst (s)",
             f"{integ['kills_without_gap_row']}; {integ.get('kill_index_error_s_max', '?')}",
             "0; ≤ 0.1"),
            ("outages", "camera back → first frame recorded, worst (s)",
             str(integ["reconnect_s_max"]), "≤ 5"),
            ("outages", "least free space above the watermark (MB)",
             f"{integ['min_free_bytes_vs_watermark'] / 1e6:.1f}", "≥ 0"),
        ]  # fmt: skip
    return out


def main() -> None:
    """Print the table as Markdown."""
    print("| area | figure | measured | target |")
    print("|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
