"""The video relay's services on the application, started and stopped in one cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from central.ingest.commands import Commands
from central.video.exports import ExportStore
from central.video.hub import VideoHub
from central.video.public_viewers import PublicViewers
from central.video.quotas import VideoQuotas
from central.video.recordings import RecordingsCache
from central.video.signing import KEY_FILE, ManifestSigner
from central.video.thumbnails import ThumbnailCache

log = logging.getLogger(__name__)

EXPIRE_EVERY_S = 5.0


@dataclass
class VideoServices:
    """The hub, exports, recordings and preview caches, the manifest signer, the quotas and
    the public links' viewers."""

    hub: VideoHub
    exports: ExportStore
    recordings: RecordingsCache
    thumbnails: ThumbnailCache
    signer: ManifestSigner
    quotas: VideoQuotas
    public: PublicViewers


class LateCommands:
    """Sends commands through the ingest client once it exists (it starts after the database)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def _commands(self) -> Commands:
        from central.keys import COMMANDS

        commands = self._app.get(COMMANDS)
        if commands is None:
            raise RuntimeError("the MQTT client is not running yet")
        return commands

    def send(self, site: str, verb: str, args: dict[str, Any]) -> str:
        """Publish a command; its request id."""
        return self._commands().send(site, verb, args)

    def reply(self, request_id: str) -> dict[str, Any] | None:
        """The command row with its reply, if any."""
        return self._commands().get(request_id)


def _public_live_ids(app: web.Application) -> Callable[[list[int]], set[int]]:
    """Which public links still live: asked of the regulator services when it is called."""
    from central.api.common import SERVICES

    def live_ids(ids: list[int]) -> set[int]:
        return app[SERVICES].public.live_ids(ids)

    return live_ids


def build_video(app: web.Application) -> VideoServices:
    """The services, on the app's database and data folder."""
    from central.keys import CONFIG, DATABASE

    config = app[CONFIG]
    commands = LateCommands(app)
    signer = ManifestSigner(config.data_dir / KEY_FILE)
    hub = VideoHub(commands.send, commands.reply)
    video = VideoServices(
        hub=hub,
        exports=ExportStore(app[DATABASE], config.data_dir / "exports", signer, commands.send),
        recordings=RecordingsCache(
            commands.send, commands.reply, config.video_quota.recordings_answer_s
        ),
        thumbnails=ThumbnailCache(config.data_dir / "thumbnails", commands.send),
        signer=signer,
        quotas=VideoQuotas(config.video_quota, hub, app[DATABASE]),
        public=PublicViewers(_public_live_ids(app)),
    )
    if config.cluster.nodes > 1:
        # Uplink tokens lead with the node: the load balancer routes the edge back here.
        prefix = f"{config.cluster.node_id}-"
        hub.token_prefix = video.exports.token_prefix = video.thumbnails.token_prefix = prefix
    return video


async def video_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the services and run the hub's watchdog and the export expiry until shutdown."""
    from central.keys import CONFIG, LEASES, VIDEO
    from central.nodes import EXPORT_EXPIRY, lead

    video = await asyncio.to_thread(build_video, app)
    app[VIDEO] = video
    expire = functools.partial(_expire_exports, video.exports)
    renew = app[CONFIG].cluster.renew_s
    tasks = [
        asyncio.create_task(video.hub.run(), name="video-watchdog"),
        asyncio.create_task(
            lead(app.get(LEASES), EXPORT_EXPIRY, expire, renew), name="video-exports"
        ),
        asyncio.create_task(video.public.run(), name="video-public-links"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await video.hub.close()


async def _expire_exports(exports: ExportStore) -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY_S)
        try:
            await asyncio.to_thread(exports.expire)
        except Exception:  # noqa: BLE001 - a locked database now is retried next round
            log.exception("export expiry failed")
