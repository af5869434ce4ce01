"""The API's endpoints, by group: transitions, a project's reads, the open operations routes, the migration.

Each route checks its input, calls the `Gateway` and answers; bearer auth, the body limit and the
error answers are `http.py`'s, what the groups share is `routes_common.py`. The two transition routes
are usually answered by the fast path (`fastpath.py`) through `routes_transitions.answer_transition`;
declared, they define the OpenAPI operations. `create_app` includes every router of `ROUTERS`.
"""

from __future__ import annotations

from fastapi import APIRouter

from swoosh.api.server import routes_migration, routes_operations, routes_projects, routes_transitions

ROUTERS: tuple[APIRouter, ...] = (
    routes_transitions.router,
    routes_projects.router,
    routes_operations.router,
    routes_migration.router,
)
