"""Requests generated from central's own /api/openapi.json, so a new route is probed unedited."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from security_world import SecurityWorld

# Values of body fields and query parameters that aim a request at county B.
B_FIELDS = {
    "org_id": "canteen_b",
    "parent_id": "county_b",
    "under": "county_b",
    "site_id": "site_id",
    "camera_id": "camera_id",
    "id": "export_id",
    "user_id": "user_id",
}


@dataclass(frozen=True)
class Operation:
    """One method of one path of the document."""

    method: str
    path: str
    spec: dict[str, Any]

    @property
    def needs_login(self) -> bool:
        """False for the routes the document marks public (`security: []`)."""
        return bool(self.spec.get("security"))

    @property
    def path_params(self) -> list[str]:
        """Names of the path's `{parameters}`."""
        return re.findall(r"\{(\w+)\}", self.path)

    def query_params(self) -> list[dict[str, Any]]:
        """The query parameters of the operation."""
        return [p for p in self.spec.get("parameters", []) if p.get("in") == "query"]

    def json_schema(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON body's schema (references resolved one level), if the route takes one."""
        content = self.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        return None if schema is None else resolve(doc, schema)

    @property
    def multipart(self) -> bool:
        """True if the route takes a multipart upload."""
        return "multipart/form-data" in self.spec.get("requestBody", {}).get("content", {})


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` (local references into the document)."""
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def operations(doc: dict[str, Any]) -> Iterator[Operation]:
    """Every operation of the document, paths in order."""
    for path, methods in doc["paths"].items():
        for method, spec in methods.items():
            yield Operation(method.upper(), path, spec)


def dummy(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    """A plausible value of a schema (the first type of a union)."""
    schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return dummy(options[0], doc) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "x"


def aimed_body(op: Operation, doc: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """A body whose known fields point at county B and whose other required fields are filled."""
    schema = op.json_schema(doc) or {}
    props: dict[str, Any] = schema.get("properties", {})
    body: dict[str, Any] = {}
    for name, prop in props.items():
        if name in B_FIELDS:
            value: Any = values[B_FIELDS[name]]
            body[name] = int(value) if resolve(doc, prop).get("type") == "integer" else value
        elif name == "cameras":
            body[name] = [f"{values['site_id']}/{values['camera_id']}"]
        elif name in schema.get("required", []):
            body[name] = dummy(prop, doc)
    return body


def aimed_query(op: Operation, values: dict[str, str]) -> dict[str, str]:
    """Query parameters pointing at county B where the route has such a parameter."""
    out = {}
    for p in op.query_params():
        name = p["name"]
        if name in B_FIELDS:
            out[name] = values[B_FIELDS[name]]
        elif p.get("required"):
            out[name] = "1700000000" if name in ("start", "end", "from", "to") else "x"
    return out


def fetch_document(world: SecurityWorld) -> dict[str, Any]:
    """The live document."""
    reply = world.request("GET", "/api/openapi.json")
    assert reply.status == 200, reply.text
    doc: dict[str, Any] = json.loads(reply.body)
    return doc
