"""Recording lanes: which cameras also record their sub stream, and the lane recorders' configs.

A camera's `record_sub` says it; left unset, the site's archive policy at central decides
(`sub` records it). The archive sender learns that policy from central's answers and keeps
it in the agent's state folder; the agent applies it when it starts (`resolve_lanes`), and a
running agent starts or stops the lanes at once when central's answer changes it
(EdgeAgent.policy_told: a stopped lane's last segment is sealed and indexed).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edge_agent.config import CameraConfig, EdgeConfig
from fsv_common.files import write_whole
from fsv_contract.lanes import lane_id

log = logging.getLogger(__name__)

POLICY_FILE = "archive_policy.json"


def learned_policy(state_dir: Path) -> str | None:
    """The site's archive policy as central last told it, or None."""
    try:
        data = json.loads((state_dir / POLICY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    policy = data.get("policy") if isinstance(data, dict) else None
    return policy if isinstance(policy, str) else None


def remember_policy(state_dir: Path, policy: str) -> bool:
    """Keep the policy central answered (for the next start); True if it changed."""
    if learned_policy(state_dir) == policy:
        return False
    write_whole(state_dir / POLICY_FILE, json.dumps({"policy": policy}).encode(), mode=0o644)
    return True


def resolve_lanes(config: EdgeConfig, policy: str | None) -> EdgeConfig:
    """The config with every camera's `record_sub` decided (unset: policy `sub` records it)."""
    decided = {"record_sub": policy == "sub"}
    cameras = [
        cam if cam.record_sub is not None else cam.model_copy(update=decided)
        for cam in config.cameras
    ]
    return config.model_copy(update={"cameras": cameras})


def sub_lane(cam: CameraConfig) -> CameraConfig:
    """The camera as its sub-stream recorder sees it: the lane id, the sub URL as its stream."""
    return cam.model_copy(
        update={
            "id": lane_id(cam.id, "sub"),
            "main_url": cam.sub_url,
            "sub_url": None,
            "record_sub": False,
            "detection": None,
        }
    )


def recording_lanes(config: EdgeConfig) -> list[str]:
    """Ids of every lane that records: the cameras' main streams and the sub lanes."""
    ids: list[str] = []
    for cam in config.cameras:
        if cam.enabled and cam.record:
            ids.append(cam.id)
        if cam.records_sub:
            ids.append(lane_id(cam.id, "sub"))
    return ids
