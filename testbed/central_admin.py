"""An admin account for a central process under test, and admin-only HTTP reads of it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from central.config import load_config
from central.regulation.scope import Scope
from central.services import build_services
from central.storage.db import CentralDatabase

ADMIN = "ops-admin"
ADMIN_PASSWORD = "ops-admin-password-1"


def create_admin(config_path: Path, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    """Create an administrator in the central database of `config_path` (before it starts)."""
    config = load_config(config_path)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    database = CentralDatabase(config.database_url)
    try:
        svc = build_services(database, config.web, config.push, config.data_dir, None)
        svc.users.create_user(
            Scope.everything(), username=username, password=password, role="admin", org_id=None
        )
    finally:
        database.close()


class AdminReader:
    """GETs of admin-only routes (ingest statistics) with a bearer session, signed in lazily."""

    def __init__(self, base_url: str, username: str = ADMIN, password: str = ADMIN_PASSWORD):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def get(self, path: str, timeout: float = 5) -> Any:
        """The JSON of `path` (signs in first when needed)."""
        if self._token is None:
            self._token = self._login(timeout)
        request = urllib.request.Request(
            self.base_url + path, headers={"Authorization": f"Bearer {self._token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)

    def _login(self, timeout: float) -> str:
        body = {"username": self.username, "password": self.password, "kind": "bearer"}
        request = urllib.request.Request(
            self.base_url + "/api/v1/auth/login",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(json.load(response)["token"])
