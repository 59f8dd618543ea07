"""How many uploads one site may send at once (media and archive alike).

Each upload holds a connection, a temporary file and their descriptors while its body
arrives, at whatever pace the box chooses: without a bound, a box that opens uploads by the
thousand and trickles them would use up central's descriptors for every site and user. An
edge sends one or two at a time, so a small bound per site costs an honest box nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class SiteBusy(Exception):
    """The site already sends as many uploads as it may at once."""


class UploadSlots:
    """Uploads running per site (the event loop's only: no lock)."""

    def __init__(self, per_site: int) -> None:
        self.per_site = per_site
        self._running: Counter[str] = Counter()

    def busy(self, site: str) -> bool:
        """Whether every slot of `site` is taken."""
        return self._running[site] >= self.per_site

    @contextmanager
    def hold(self, site: str) -> Iterator[None]:
        """A slot of `site` for one upload; SiteBusy when all are taken."""
        if self.busy(site):
            raise SiteBusy(
                f"site {site} already sends {self.per_site} uploads at once; retry when one ends"
            )
        self._running[site] += 1
        try:
            yield
        finally:
            self._running[site] -= 1
            if not self._running[site]:
                del self._running[site]
