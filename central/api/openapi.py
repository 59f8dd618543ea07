"""The OpenAPI 3.1 document of the regulator API, built from the route table itself."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from central import __version__
from central.api.registry import Endpoint

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            "required": ["status", "message"],
        }
    },
}


def openapi_path(path: str) -> str:
    """An aiohttp route path in OpenAPI form (`{name:regex}` becomes `{name}`)."""
    return _PARAM.sub(r"{\1}", path)


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(ep: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": ep.handler.__name__,
        "summary": ep.summary,
        "tags": [ep.tag],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(ep.path)
        ],
    }
    if ep.query is not None:
        op["parameters"] += _query_params(ep.query)
    if ep.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(ep.body, components)}},
        }
    elif ep.multipart:
        props = {
            name: {"type": "array", "items": {"type": "string", "format": "binary"}}
            if name == "photos"
            else {"type": "string"}
            for name in ep.multipart
        }
        op["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": props}}},
        }
    ok = {
        str(s): {"description": "success", "content": {c: {} for c in ep.produces}}
        for s in ep.statuses
        if s < 300
    }
    errors = {"400": "invalid input", "404": "not found or outside your scope"}
    if ep.auth:
        errors |= {"401": "not signed in", "403": "your role may not do this"}
        op["security"] = [{"bearer": []}, {"cookie": []}]
    else:
        op["security"] = []
    for s in ep.statuses:
        if s >= 400:
            errors.setdefault(str(s), "see message")
    op["responses"] = ok | {
        code: {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code, text in errors.items()
    }
    return op


def build_openapi(endpoints: list[Endpoint]) -> dict[str, Any]:
    """The OpenAPI document of `endpoints`."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(openapi_path(ep.path), {})[ep.method.lower()] = _operation(ep, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Food-safety video supervision — central API",
            "version": __version__,
            "description": "Organisation tree, alerts and rectification, push, reports, audit. "
            "Times are UTC (epoch seconds in bodies; epoch or ISO 8601 in queries). Cookie "
            "sessions must echo the CSRF token in the X-CSRF-Token header on writes.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "fsv_session"},
            },
        },
    }
