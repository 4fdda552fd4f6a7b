"""How message.schema.json was made (run by hand; tests only read the JSON).

python3 tests/data/payloads/graph/extract.py /path/to/business-messaging-api_v23.0.yaml

Takes components.schemas reachable from Message and MarkMessageRequestPayload in Meta's OpenAPI spec,
rewrites $refs to $defs, drops discriminators and examples, and merges Meta's
`allOf: [BaseMessageProperties, {additionalProperties: false, ...}]` pattern into one object:
in JSON Schema, additionalProperties cannot see a sibling allOf branch's properties, so the
spec as written would refuse every message.

Then `patch` relaxes what the spec gets wrong against Meta's own examples and documentation:
location coordinates are numbers in Meta's examples (the schema says strings); the template
language `policy` ("deterministic") is no longer required; `cta_url` interactive messages
(documented since 2023) are missing from the v23.0 schema; a customer known only by a business-scoped
user id (BSUID, 2026) is addressed with `recipient` instead of `to`, which v23.0 predates.
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml

PREFIX = "#/components/schemas/"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"][len(PREFIX):]] if isinstance(node.get("$ref"), str) else []
        return found + [r for k, v in node.items() if k != "$ref" for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (v.replace(PREFIX, "#/$defs/") if k == "$ref" else rewrite(v))
                for k, v in node.items() if k not in ("discriminator", "example", "examples")}
    if isinstance(node, list):
        return [rewrite(v) for v in node]
    return node


def merge(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    parts = schema.get("allOf")
    if not parts or len(parts) != 2 or "$ref" not in parts[0]:
        return schema
    base = defs[parts[0]["$ref"].split("/")[-1]]
    own = parts[1]
    return {
        "type": "object",
        "additionalProperties": own.get("additionalProperties", True),
        "required": sorted(set(base.get("required", [])) | set(own.get("required", []))),
        "properties": {**base.get("properties", {}), **own.get("properties", {})},
    }


def patch(defs: dict[str, Any]) -> None:
    location = defs["LocationMessage"]["properties"]["location"]["properties"]
    for key in ("latitude", "longitude"):
        location[key]["type"] = ["number", "string"]
    defs["LanguageObject"]["required"] = [r for r in defs["LanguageObject"].get("required", []) if r != "policy"]
    interactive = defs["InteractiveObject"]["properties"]
    interactive["type"]["enum"].append("cta_url")
    defs["ActionObject"]["oneOf"].append({
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "parameters"],
        "properties": {
            "name": {"enum": ["cta_url"]},
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "required": ["display_text", "url"],
                "properties": {"display_text": {"type": "string", "maxLength": 20}, "url": {"type": "string"}},
            },
        },
    })


    for schema in defs.values():
        if "to" in schema.get("properties", {}) and "to" in schema.get("required", []):
            schema["properties"]["recipient"] = {
                "type": "string", "description": "The business-scoped user id (BSUID) when there is no phone number.",
            }
            schema["required"] = [r for r in schema["required"] if r != "to"]
            schema["anyOf"] = [{"required": ["to"]}, {"required": ["recipient"]}]


def main(spec: str) -> None:
    schemas = yaml.load(Path(spec).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)["components"]["schemas"]
    need: set[str] = set()
    todo = ["Message", "MarkMessageRequestPayload"]
    while todo:
        name = todo.pop()
        if name not in need:
            need.add(name)
            todo.extend(refs(schemas[name]))
    defs = {n: rewrite(schemas[n]) for n in sorted(need)}
    defs = {n: merge(s, defs) for n, s in defs.items()}
    patch(defs)
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "Extracted by extract.py from Meta's OpenAPI spec business-messaging-api_v23.0.yaml "
        "(github.com/facebook/openapi @ ecba623, MIT, see ../LICENSE.facebook-openapi).",
        "$defs": defs,
    }
    Path(__file__).with_name("message.schema.json").write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main(sys.argv[1])
