"""The workflow sandbox configuration: pass through modules that are deterministic or heavy to re-import."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# The pure core is deterministic by construction (no clock, randomness or I/O), so sharing it with the
# worker process is safe and avoids re-importing it for every workflow run. The workflow module
# itself (workflows.lifecycle) stays sandboxed.
CORE = tuple(
    f"workflows.{m}"
    for m in (
        "canonical",
        "hlc",
        "crypto",
        "keyring",
        "proposal",
        "statechart",
        "document",
        "inputs",
        "reducer",
        "engine",
        "answers",
        "decision",
        "errors",
        "messages",
    )
)
PASSTHROUGH = ("pydantic", "pydantic_core", "cryptography", "yaml", "annotated_types", "guards", *CORE)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
