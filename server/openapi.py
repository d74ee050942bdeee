"""The OpenAPI 3.1 document of the HMA-compatible API, built from the routes themselves so
it cannot drift from what the server answers."""

from __future__ import annotations

import inspect
import re
from typing import Any

from starlette.routing import Route

API_PREFIXES = ("/status", "/h/", "/m/", "/c/", "/openapi.json")


def document(routes: list[Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.path.startswith(API_PREFIXES):
            continue
        role = getattr(route.endpoint, "required_role", None)
        doc = inspect.getdoc(route.endpoint) or ""
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", route.path)
        ]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation: dict[str, Any] = {
                "summary": doc.splitlines()[0] if doc else route.name,
                "parameters": parameters,
                "responses": {
                    "200": {"description": "OK"},
                    "400": {"description": "Bad request", "content": _message()},
                    "401": {"description": "No or unknown token", "content": _message()},
                    "403": {"description": "Role too low", "content": _message()},
                    "503": {"description": "Index not yet ready", "content": _message()},
                },
            }
            if role is not None:
                operation["security"] = [{"bearer": []}]
                operation["x-ansim-role"] = role
            paths.setdefault(re.sub(r"{(\w+)}", r"{\1}", route.path), {})[method.lower()] = (
                operation
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ansim HMA-compatible API",
            "version": "1",
            "description": "Hasher-Matcher-Actioner's hashing, matching and curation endpoints "
            "over ansim's banks. Bearer tokens come from `ansim token create`.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Message": {"type": "object", "properties": {"message": {"type": "string"}}}
            },
        },
        "paths": paths,
    }


def _message() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}
