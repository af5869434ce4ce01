"""What a namespace needs before SWOOSH runs on it, checked and prepared: it exists, and SWOOSH's search
attributes are registered with the right types.

`swoosh setup` prepares (idempotently); the worker and the API check at start and refuse to run on
an unprepared namespace with a message naming `swoosh setup`, rather than failing every project
start with INVALID_ARGUMENT later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from swoosh.workflows.errors import SwooshError
from swoosh.workflows.lifecycle.visibility import SEARCH_ATTRIBUTES

SETUP_HINT = "run `swoosh setup` once per namespace (see docs/operations.md)"
_TYPES = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}
# Operator calls a namespace-scoped credential may not be allowed to make (e.g. on Temporal Cloud).
_NOT_ALLOWED = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.UNAUTHENTICATED)


class SetupRequired(SwooshError):
    """The namespace is not prepared for SWOOSH (missing, or without SWOOSH's search attributes)."""


def wanted() -> dict[str, IndexedValueType.ValueType]:
    """SWOOSH's search attributes: name -> indexed value type."""
    return {key.name: _TYPES[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES}


def type_name(value: IndexedValueType.ValueType) -> str:
    return IndexedValueType.Name(value).removeprefix("INDEXED_VALUE_TYPE_").title()


async def namespace_problem(client: Client, timeout_s: float = 5.0) -> str | None:
    """None when the client's namespace answers; else why it does not (missing, refused, unreachable)."""
    ns = client.namespace
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=ns), timeout=timedelta(seconds=timeout_s)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            return None  # a server without namespaces (the time-skipping test server) answered: reachable
        if err.status == RPCStatusCode.NOT_FOUND:
            return (
                f"namespace {ns!r} does not exist on this cluster: create it first "
                f"(`temporal operator namespace create --namespace {ns}`, or in Temporal Cloud)"
            )
        return f"Temporal answered {err.status.name} for namespace {ns!r}: {err.message}"
    return None


@dataclass
class SearchAttributeReport:
    """What `search_attribute_report` found: present with the right type, missing, present with another type."""

    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    wrong_type: dict[str, str] = field(default_factory=dict)  # name -> the type the namespace has
    unknown: str | None = None  # the namespace's list could not be read (why)

    def problem(self) -> str | None:
        """The reason the namespace is not ready for SWOOSH, or None."""
        parts = []
        if self.missing:
            parts.append(f"lacks SWOOSH's search attributes {', '.join(self.missing)}")
        for name, actual in self.wrong_type.items():
            parts.append(f"has search attribute {name} as {actual}, SWOOSH needs {type_name(wanted()[name])}")
        return "; ".join(parts) or None


async def search_attribute_report(client: Client) -> SearchAttributeReport:
    report = SearchAttributeReport()
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status in _NOT_ALLOWED:
            report.unknown = f"cannot list search attributes ({err.status.name}: {err.message})"
            return report
        raise
    have = dict(listed.custom_attributes)
    for name, kind in wanted().items():
        if name not in have:
            report.missing.append(name)
        elif have[name] != kind:
            report.wrong_type[name] = type_name(have[name])
        else:
            report.present.append(name)
    return report


async def setup_problem(client: Client) -> str | None:
    """Why this namespace cannot run SWOOSH yet (with the remedy), or None when it can (or cannot be told)."""
    problem = await namespace_problem(client)
    if problem is None:
        problem = (await search_attribute_report(client)).problem()
        if problem is not None:
            problem = f"namespace {client.namespace!r} {problem}"
    return None if problem is None else f"{problem}: {SETUP_HINT}"


async def require_setup(client: Client) -> None:
    """Raise SetupRequired (naming `swoosh setup`) unless the namespace is ready for SWOOSH."""
    problem = await setup_problem(client)
    if problem is not None:
        raise SetupRequired(problem)


async def ensure_search_attributes(client: Client) -> tuple[list[str], SearchAttributeReport]:
    """Add the missing search attributes; (names added, the report before). Idempotent.

    A name registered with another type cannot be changed in place: SetupRequired says so.
    """
    report = await search_attribute_report(client)
    if report.wrong_type:
        raise SetupRequired(f"namespace {client.namespace!r} {report.problem()}; remove or rename it first")
    if report.unknown is not None:
        raise SetupRequired(
            f"{report.unknown}: register these search attributes in namespace {client.namespace!r} another way "
            f"(Temporal Cloud: `tcld namespace search-attributes add`): "
            + ", ".join(f"{n}={type_name(t)}" for n, t in wanted().items())
        )
    if report.missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=client.namespace, search_attributes={n: wanted()[n] for n in report.missing}
                )
            )
        except RPCError as err:
            if err.status in _NOT_ALLOWED:
                raise SetupRequired(
                    f"not allowed to add search attributes to namespace {client.namespace!r} "
                    f"({err.status.name}: {err.message}); register them another way: "
                    + ", ".join(f"{n}={type_name(wanted()[n])}" for n in report.missing)
                ) from None
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return list(report.missing), report
