"""Checking a JSON body against a schema of the API's OpenAPI 3.0 document (app/web/openapi.py).

A small validator for the parts of OpenAPI 3.0's schema language the document uses: $ref,
type (with nullable), required, properties, additionalProperties (false or a schema),
items, enum, minimum/maximum, maxItems, pattern. It is written here rather than taken from
PyPI because the project's environment is shared and pinned (jsonschema would need
OpenAPI 3.0's nullable translated anyway); anything else in a schema fails loudly, so the
document cannot use a keyword this checker would silently skip.
"""
from __future__ import annotations

import re

KNOWN = {"$ref", "type", "nullable", "required", "properties", "additionalProperties", "items", "enum", "minimum",
         "maximum", "maxItems", "pattern", "description", "example", "default", "format"}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def errors(value, schema: dict, doc: dict, where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty when it conforms)."""
    unknown = set(schema) - KNOWN
    if unknown:
        return [f"{where}: the schema uses {sorted(unknown)}, which this checker does not know"]
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return errors(value, doc["components"]["schemas"][name], doc, where)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null is not allowed"]
    kind = schema.get("type")
    found: list[str] = []
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: {value!r} is not an integer"]
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{where}: {value!r} is not a number"]
    elif kind is not None and not isinstance(value, TYPES[kind]):
        return [f"{where}: {type(value).__name__} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{where}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{where}: {value} > {schema['maximum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            found.append(f"{where}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            found += errors(item, schema.get("items", {}), doc, f"{where}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{where}: {key!r} is missing" for key in schema.get("required", []) if key not in value]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], doc, f"{where}.{key}")
            elif extra is False:
                found.append(f"{where}: {key!r} is not documented")
            elif isinstance(extra, dict):
                found += errors(item, extra, doc, f"{where}.{key}")
    return found


def response_schema(doc: dict, path: str, method: str, status: int) -> dict:
    """The documented JSON schema of one answer; KeyError when the answer is not documented."""
    answer = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in answer:
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer["content"]["application/json"]["schema"]
