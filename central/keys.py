"""Typed keys of everything central keeps on its aiohttp application."""

from __future__ import annotations

from aiohttp import web

from central.archive.service import CityArchive
from central.config import CentralConfig
from central.ingest.broker_client import BrokerClient
from central.ingest.commands import Commands
from central.ingest.media import MediaStore
from central.ingest.pipeline import Ingest, IngestHooks
from central.ingest.site_auth import SitePasswords
from central.ingest.store import IngestStore
from central.ingest.upload_slots import UploadSlots
from central.integrity.audits import Audits
from central.nodes import Leases
from central.regulation.throttle import LoginThrottle
from central.storage.db import CentralDatabase
from central.video.services import VideoServices

CONFIG = web.AppKey("config", CentralConfig)
DATABASE = web.AppKey("database", CentralDatabase)
INGEST_STORE = web.AppKey("ingest_store", IngestStore)
INGEST = web.AppKey("ingest", Ingest)
BROKER = web.AppKey("broker", BrokerClient)
MEDIA = web.AppKey("media", MediaStore)
SITE_PASSWORDS = web.AppKey("site_passwords", SitePasswords)
SITE_THROTTLE = web.AppKey("site_throttle", LoginThrottle)
UPLOAD_SLOTS = web.AppKey("upload_slots", UploadSlots)
INGEST_HOOKS = web.AppKey("ingest_hooks", IngestHooks)
COMMANDS = web.AppKey("commands", Commands)
VIDEO = web.AppKey("video", VideoServices)
INTEGRITY = web.AppKey("integrity", Audits)
ARCHIVE = web.AppKey("archive", CityArchive)
# Only with cluster.nodes > 1: the leases of the work that runs on one node at a time.
LEASES = web.AppKey("leases", Leases)
