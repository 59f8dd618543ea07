"""A route table that remembers each endpoint's models, so the OpenAPI document matches it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    """One documented route."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: bool = True
    multipart: tuple[str, ...] = ()
    produces: tuple[str, ...] = ("application/json",)
    statuses: tuple[int, ...] = field(default=(200,))


class RouteTable:
    """Collects endpoints with their documentation, then adds them to an application."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        auth: bool = True,
        multipart: tuple[str, ...] = (),
        produces: tuple[str, ...] = ("application/json",),
        statuses: tuple[int, ...] = (200,),
    ) -> Callable[[Handler], Handler]:
        """Decorator registering `handler` for `method path`."""

        def add(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method.upper(),
                    path,
                    handler,
                    summary,
                    tag,
                    body,
                    query,
                    auth,
                    multipart,
                    produces,
                    statuses,
                )
            )
            return handler

        return add

    def add_to(self, app: web.Application) -> None:
        """Register every endpoint on `app`'s router."""
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, ep.handler)
