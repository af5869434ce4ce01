"""One way to reach Temporal for every SWOOSH process and tool: `connect()` and the data converter.

The worker, the API, `swoosh replay`, `swoosh audit`, the dev stack and the chaos harness all
connect here, so what a payload looks like on the wire (pydantic JSON) and how the cluster is
reached are decided once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime


class TemporalSettings(BaseModel):
    """Where the Temporal frontend is and which task queue SWOOSH's workers poll."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(default="127.0.0.1:7233", min_length=1)
    namespace: str = Field(default="default", min_length=1)
    task_queue: str = Field(default="swoosh", min_length=1)


def data_converter() -> DataConverter:
    """How SWOOSH's payloads are written: pydantic models as JSON."""
    return pydantic_data_converter


async def connect(settings: TemporalSettings, *, runtime: Runtime | None = None, lazy: bool = False) -> Client:
    """A client for the configured cluster and namespace, with SWOOSH's data converter."""
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter(),
        runtime=runtime or Runtime.default(),
        lazy=lazy,
    )
