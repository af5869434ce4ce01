"""MCP tooling health: the registry's reachability and the versions of the tools it serves.

Embedded: a static tool list from settings, always reachable. HTTP: `GET {base_url}/v1/mcp/tools`
(optionally `?name=…` per probed tool). Every failure becomes `reachable=False` with a detail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from swoosh.guards.facts import McpFact

log = logging.getLogger("swoosh.activities.mcp")

TOOLS_PATH = "/v1/mcp/tools"


class EmbeddedMcpProvider:
    """A configured static tool list: always reachable, fetched now."""

    def __init__(self, tools: Mapping[str, str], clock: Callable[[], int]) -> None:
        self.tools = dict(tools)
        self.clock = clock

    async def mcp(self) -> McpFact:
        return McpFact(reachable=True, tools=dict(self.tools), fetched_at_ms=self.clock(), detail="embedded tool list")


def parse_tools(payload: Any) -> dict[str, str]:
    """The registry's tool list: `{"tools": [{"name", "version"}, …]}` or `{"tools": {name: version}}`."""
    if not isinstance(payload, Mapping) or "tools" not in payload:
        raise ValueError("registry answer has no tools")
    raw = payload["tools"]
    items = raw.items() if isinstance(raw, Mapping) else ((t.get("name"), t.get("version")) for t in _dicts(raw))
    tools: dict[str, str] = {}
    for name, version in items:
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise ValueError("every tool needs a non-empty name and version")
        tools[name] = version
    return tools


def _dicts(raw: Any) -> list[Mapping[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise ValueError("tools must be a list of objects or an object")
    return raw


class HttpMcpProvider:
    """Probes the MCP registry over HTTP for the probed tools (or all it serves)."""

    def __init__(self, client: httpx.AsyncClient, probe: tuple[str, ...], clock: Callable[[], int]) -> None:
        self.client = client
        self.probe = probe
        self.clock = clock

    async def mcp(self) -> McpFact:
        params = {"name": list(self.probe)} if self.probe else None
        try:
            response = await self.client.get(TOOLS_PATH, params=params)
        except httpx.TimeoutException:
            return self._down("MCP registry timed out")
        except httpx.HTTPError as err:
            return self._down(f"MCP registry unreachable: {type(err).__name__}")
        if response.status_code in (401, 403):
            return self._down(f"MCP registry denied access (HTTP {response.status_code})")
        if response.status_code != 200:
            return self._down(f"MCP registry answered HTTP {response.status_code}")
        try:
            tools = parse_tools(response.json())
        except ValueError as err:
            return self._down(f"MCP registry answer malformed: {err}")
        if self.probe:
            tools = {n: v for n, v in tools.items() if n in self.probe}
        missing = sorted(set(self.probe) - set(tools))
        detail = f"registry does not serve: {', '.join(missing)}" if missing else ""
        return McpFact(reachable=True, tools=tools, fetched_at_ms=self.clock(), detail=detail)

    def _down(self, detail: str) -> McpFact:
        log.warning("MCP probe failed: %s", detail)
        return McpFact(reachable=False, fetched_at_ms=self.clock(), detail=detail)
