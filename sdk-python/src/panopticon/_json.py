"""JSON helpers: compact text that always encodes to UTF-8, and plain-JSON copies of Python values."""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import pathlib
import uuid
from typing import Any

__all__ = ["dumps", "jsonable", "OMIT"]


def dumps(value: Any) -> str:
    """Compact JSON whose UTF-8 encoding is always possible.

    Non-ASCII text is kept as is (smaller bodies), unless the value holds a lone surrogate (a
    ``str`` Python allows but UTF-8 cannot encode, e.g. from ``os.fsdecode``): then everything
    non-ASCII is escaped, and the server stores such a surrogate as U+FFFD.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: Returned by ``jsonable(..., unknown="omit")`` for a value with no JSON form.
OMIT: Any = _Omit()


def jsonable(value: Any, unknown: str = "str", _depth: int = 0) -> Any:
    """A copy of ``value`` made of dict/list/str/int/float/bool/None only.

    Understood: JSON types, tuples/sets/frozensets (lists), mappings (keys as strings), dataclasses,
    pydantic models (``model_dump(mode="json")`` or ``dict()``), enums (their value), datetimes/dates/
    times (ISO 8601), UUID, Decimal, paths and bytes (text). NaN and infinities become strings.
    Anything else (an open file, a framework's context object) becomes ``str(value)`` with
    ``unknown="str"``, or ``OMIT`` with ``unknown="omit"``: the caller then leaves it out (a
    dict entry or list item whose value is ``OMIT`` is dropped).
    """
    if _depth > 64:
        return OMIT if unknown == "omit" else "…"
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, enum.Enum):
            return jsonable(value.value, unknown, _depth + 1)
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            j = jsonable(v, unknown, _depth + 1)
            if j is not OMIT:
                out[k if isinstance(k, str) else str(k)] = j
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v, unknown, _depth + 1) for v in value]
        return [v for v in items if v is not OMIT]
    if isinstance(value, enum.Enum):
        return jsonable(value.value, unknown, _depth + 1)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal, pathlib.PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), unknown, _depth + 1)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump) and not isinstance(value, type):
        try:
            return jsonable(dump(mode="json"), unknown, _depth + 1)
        except Exception:  # noqa: BLE001 - a model that cannot dump itself is treated as unknown
            pass
    legacy = getattr(value, "dict", None)  # pydantic v1
    if callable(legacy) and hasattr(value, "__fields__") and not isinstance(value, type):
        try:
            return jsonable(legacy(), unknown, _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    if unknown == "omit":
        return OMIT
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a __str__ that raises
        return "<%s>" % type(value).__name__
