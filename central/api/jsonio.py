"""Strict JSON at the HTTP boundary: no NaN or Infinity in, none out.

Python's `json` accepts the non-standard literals `NaN`, `Infinity` and `-Infinity`, and a
number such as `1e999` silently overflows to infinity. A stored infinity later turns into a
bare `Infinity` in responses, which browsers cannot parse (an inbox that shows no rows), so
requests carrying any of them are refused and responses are written with `allow_nan=False`.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from central.errors import InvalidInputError
from fsv_contract.codec import nul_path

log = logging.getLogger(__name__)


class _NonFinite(ValueError):
    """A number that is not finite (NaN, ±Infinity or one that overflows)."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"{text[:40]} is too large a number")
    return value


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON refusing NaN, Infinity, overflowing numbers and text holding NUL, which
    PostgreSQL cannot store (InvalidInputError)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as e:
        raise InvalidInputError(f"body: {e}") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"body: not valid JSON ({e})") from e
    except RecursionError as e:  # e.g. 50,000 nested arrays: json recurses per level
        raise InvalidInputError("body: nested too deeply") from e
    where = nul_path(value)
    if where is not None:
        raise InvalidInputError(f"body: {where}: text holds a NUL character (\\u0000)")
    return value


def non_finite_path(value: Any, where: str = "") -> str | None:
    """The location of the first non-finite float inside `value`, or None if there is none."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where or "value")
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite_path(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _finite_copy(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_copy(v) for v in value]
    return value


def dumps(data: Any) -> str:
    """JSON text for a response; a non-finite number (old rows) is written as null, logged."""
    try:
        return json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        log.warning("response held a non-finite number at %s: sent as null", non_finite_path(data))
        return json.dumps(_finite_copy(data), ensure_ascii=False, default=str, allow_nan=False)
