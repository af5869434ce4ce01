"""The test kit for SWOOSH lifecycles, like `temporalio.testing` for workflows.

    from swoosh.workflows.testing import FakeFacts, lifecycle_worker, start_time_skipping

A time-skipping Temporal test server (`start_time_skipping`), a worker running the real workflow
and activities with facts a test controls (`lifecycle_worker`, `FakeFacts`), a driver that proposes
valid transitions (`LifecycleDriver`), and pytest fixtures: name the plugin in your conftest.py,
`pytest_plugins = ["swoosh.workflows.testing.pytest_plugin"]` (needs `pip install 'swoosh[testing]'`).
"""

from swoosh.workflows.testing.driver import LifecycleDriver, valid_inputs
from swoosh.workflows.testing.environment import (
    FakeFacts,
    binary,
    lifecycle_worker,
    register_search_attributes,
    search_attribute_flags,
    start_time_skipping,
)

__all__ = [
    "FakeFacts",
    "LifecycleDriver",
    "binary",
    "lifecycle_worker",
    "register_search_attributes",
    "search_attribute_flags",
    "start_time_skipping",
    "valid_inputs",
]
