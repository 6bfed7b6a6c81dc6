"""A small JSON Schema validator (the subset partition/kvrun-lookup-table-2.schema.json uses:
type, const, enum, required, properties, additionalProperties, items, minItems, maxItems,
minimum, maximum, exclusiveMinimum, pattern, $ref to #/$defs). Standard library only."""

from __future__ import annotations

import re
from typing import Any, Dict, List

__all__ = ["validate", "SchemaError"]

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


class SchemaError(ValueError):
    """The document does not follow the schema; ``errors`` lists every violation."""

    def __init__(self, errors: List[str]) -> None:
        super().__init__("; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""))
        self.errors = errors


def _is_type(x: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(x, int) and not isinstance(x, bool)
    if t == "number":
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    return isinstance(x, _TYPES[t])


def _check(x: Any, s: Dict[str, Any], root: Dict[str, Any], at: str, errs: List[str]) -> None:
    if "$ref" in s:
        ref = s["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref}")
        s = root["$defs"][ref[len("#/$defs/"):]]
    unknown = set(s) - {"type", "const", "enum", "required", "properties", "additionalProperties",
                        "items", "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum",
                        "pattern", "description", "title", "$schema", "$id", "$defs"}
    if unknown:
        raise ValueError(f"unsupported schema keywords {sorted(unknown)}")
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_is_type(x, t) for t in types):
            errs.append(f"{at}: {type(x).__name__} is not {s['type']}")
            return
    if "const" in s and x != s["const"]:
        errs.append(f"{at}: {x!r} is not {s['const']!r}")
    if "enum" in s and x not in s["enum"]:
        errs.append(f"{at}: {x!r} is not one of {s['enum']}")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if "minimum" in s and x < s["minimum"]:
            errs.append(f"{at}: {x} < {s['minimum']}")
        if "maximum" in s and x > s["maximum"]:
            errs.append(f"{at}: {x} > {s['maximum']}")
        if "exclusiveMinimum" in s and x <= s["exclusiveMinimum"]:
            errs.append(f"{at}: {x} <= {s['exclusiveMinimum']}")
    if isinstance(x, str) and "pattern" in s and not re.search(s["pattern"], x):
        errs.append(f"{at}: {x!r} does not match {s['pattern']}")
    if isinstance(x, list):
        if len(x) < s.get("minItems", 0) or len(x) > s.get("maxItems", len(x)):
            errs.append(f"{at}: {len(x)} items")
        for i, v in enumerate(x):
            if "items" in s:
                _check(v, s["items"], root, f"{at}[{i}]", errs)
    if isinstance(x, dict):
        for k in s.get("required", []):
            if k not in x:
                errs.append(f"{at}: missing '{k}'")
        props = s.get("properties", {})
        for k, v in x.items():
            if k in props:
                _check(v, props[k], root, f"{at}.{k}", errs)
            elif s.get("additionalProperties") is False:
                errs.append(f"{at}: unexpected key '{k}'")
            elif isinstance(s.get("additionalProperties"), dict):
                _check(v, s["additionalProperties"], root, f"{at}.{k}", errs)


def validate(doc: Any, schema: Dict[str, Any]) -> None:
    """Raises :class:`SchemaError` listing every violation; returns None when doc is valid."""
    errs: List[str] = []
    _check(doc, schema, schema, "$", errs)
    if errs:
        raise SchemaError(errs)
