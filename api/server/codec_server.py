"""A Temporal codec server for SWOOSH's payload encryption: `POST /encode`, `POST /decode`.

The Temporal UI (with a codec endpoint) and the `temporal` CLI (`--codec-endpoint`) send
`{"payloads": [...]}` in protobuf JSON and get the same shape back, decrypted (or encrypted). The
browser calls it cross-origin, so the configured UI origins get CORS answers (preflight included).
When API tokens are configured, a request needs a token with the `read` scope on every project
(`projects = ["*"]`): a decoded payload may belong to any project.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from swoosh.api.server import jsonlog
from swoosh.api.server.tokens import TokenSet
from swoosh.workflows.errors import SwooshError

MAX_CODEC_BODY_BYTES = 16 * 1024 * 1024  # a UI page of a large history; Temporal's own payload limit is 2 MB each
ALLOWED_HEADERS = "authorization,content-type,x-namespace"


class CodecEdge:
    """The codec server's tokens (swappable on reload, as the API's) and allowed browser origins."""

    def __init__(self, tokens: TokenSet, origins: Iterable[str]) -> None:
        self.tokens = tokens
        self.origins = frozenset(o.rstrip("/") for o in origins)

    def replace_tokens(self, tokens: TokenSet) -> None:
        self.tokens = tokens

    def cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin", "")
        if origin.rstrip("/") not in self.origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def refusal(self, request: Request) -> tuple[int, str, str] | None:
        """(status, error, reason) when the request may not use the codec; None when it may."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        principal = self.tokens.authenticate(token.strip() if scheme.lower() == "bearer" and token else None)
        if principal is None:
            return 401, "unauthorized", "a bearer token with the read scope on every project is required"
        if not (principal.may("read") and principal.everywhere):
            return 403, "forbidden", f"token {principal.label} needs the read scope on every project (projects = [*])"
        return None


def create_codec_app(
    codec: PayloadCodec,
    *,
    tokens: TokenSet | None = None,
    origins: Sequence[str] = (),
    max_body_bytes: int = MAX_CODEC_BODY_BYTES,
) -> Starlette:
    """The codec server app; `app.state.edge` is its `CodecEdge` (for token reloads)."""
    edge = CodecEdge(tokens or TokenSet(), origins)

    def endpoint(
        apply: Callable[[Sequence[Payload]], Awaitable[list[Payload]]], what: str
    ) -> Callable[..., Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            headers = edge.cors(request)
            if request.method == "OPTIONS":
                return Response(status_code=204 if headers else 403, headers=headers)
            refused = edge.refusal(request)
            if refused is not None:
                status, error, reason = refused
                jsonlog.problem(None, "POST", request.url.path, status, error, reason, None)
                extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
                return JSONResponse({"error": error, "reason": reason}, status_code=status, headers=headers | extra)
            body = await _read_limited(request, max_body_bytes)
            if body is None:
                reason = f"body over the limit of {max_body_bytes} bytes"
                return JSONResponse({"error": "payload_too_large", "reason": reason}, 413, headers=headers)
            try:
                payloads = json_format.Parse(body, Payloads())
            except (json_format.ParseError, UnicodeDecodeError) as err:
                reason = f"not a JSON Payloads object: {str(err)[:200]}"
                return JSONResponse({"error": "schema", "reason": reason}, 400, headers=headers)
            try:
                result = await apply(list(payloads.payloads))
            except SwooshError as err:  # e.g. a key that is not configured: the reason names the key id only
                return JSONResponse({"error": f"cannot_{what}", "reason": str(err)}, 400, headers=headers)
            text = json_format.MessageToJson(Payloads(payloads=result))
            return Response(text, media_type="application/json", headers=headers)

        return handle

    app = Starlette(
        routes=[
            Route("/encode", endpoint(codec.encode, "encode"), methods=["POST", "OPTIONS"]),
            Route("/decode", endpoint(codec.decode, "decode"), methods=["POST", "OPTIONS"]),
        ]
    )
    app.state.edge = edge
    return app


async def _read_limited(request: Request, limit: int) -> bytes | None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)
