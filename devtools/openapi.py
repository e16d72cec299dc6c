"""Write ``openapi.json``: the HTTP API's spec, generated from the handlers' own routes and models.

Each HTTP function has its own Powertools resolver; their specs are merged into one document for the whole
API (``make openapi``). A test fails when the committed file differs from what the code generates.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "openapi.json"
HANDLERS = ("functions.piapi_webhook.handler", "functions.save_to_library.handler", "functions.library_api.handler")
TITLE = "video-library API"
# The project's one version number (pyproject.toml), as the layer's description and CHANGELOG.md carry it.
VERSION = version("video-library")
DESCRIPTION = (
    "Keeps AI-generated videos: PiAPI webhooks, the library, Save to Library into Cloudflare R2. Every route "
    "but the webhook needs a JWT (`Authorization: Bearer ...`) verified by API Gateway; the webhook needs the "
    'shared secret in `x-webhook-secret`. Errors are `{"error": {"code", "message", ...}}`.'
)


def spec() -> dict[str, Any]:
    import importlib

    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "webhookSecret": {"type": "apiKey", "in": "header", "name": "x-webhook-secret"},
            },
        },
    }
    for module_name in HANDLERS:
        app = importlib.import_module(module_name).app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        security = [{"webhookSecret": []}] if "webhook" in module_name else [{"jwt": []}]
        for path, operations in part["paths"].items():
            for operation in operations.values():
                operation["security"] = security
            merged["paths"].setdefault(path, {}).update(operations)
        merged["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    merged["paths"] = dict(sorted(merged["paths"].items()))
    merged["components"]["schemas"] = dict(sorted(merged["components"]["schemas"].items()))
    return merged


def render() -> str:
    return json.dumps(spec(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    SPEC_FILE.write_text(render())
    print(f"wrote {SPEC_FILE.relative_to(ROOT)}")
