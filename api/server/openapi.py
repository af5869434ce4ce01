"""The committed OpenAPI document (`api/server/openapi.json`): generate it, or check it is current.

python -m swoosh.api.server.openapi          # rewrite api/server/openapi.json
python -m swoosh.api.server.openapi --check  # exit 1 when the committed file differs from the served document
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swoosh.workflows.keyring import Keyring

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


async def _no_client() -> Any:
    raise RuntimeError("the OpenAPI document needs no Temporal connection")


def openapi_document() -> dict[str, Any]:
    """The document the API serves at /openapi.json (independent of configuration)."""
    from swoosh.api.server.app import create_app

    app = create_app(_no_client, task_queue="swoosh", keyring=Keyring(), create_default_project=False)
    return app.openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swoosh.api.server.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--output", type=Path, default=OPENAPI_PATH)
    args = parser.parse_args(argv)
    text = render(openapi_document())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run `python -m swoosh.api.server.openapi`", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
