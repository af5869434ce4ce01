"""The SWOOSH Python client: HTTP clients, proposal signing and typed errors.

    from swoosh.api.client import SwooshClient
    with SwooshClient("http://127.0.0.1:8080", project_id="demo", key=".swoosh/dev/keys/operator.key") as c:
        c.propose("Boot_ConfigOk")

`errors` holds the typed errors (one class per contract rejection code and per HTTP failure);
`Signers` and `ProposalFactory` build signed proposals, votes and approvals for tests and tools.
"""

from swoosh.api.client import errors
from swoosh.api.client._clock import HLCClock
from swoosh.api.client._core import RetryPolicy, load_key
from swoosh.api.client._devkeys import DevKeyring, dev_keyring, load_signers
from swoosh.api.client._factory import DEFAULT_ROLES, ProposalFactory, Signers
from swoosh.api.client._http import AsyncSwooshClient, SwooshClient
from swoosh.workflows.identities import sign_rotation_approval

__all__ = [
    "DEFAULT_ROLES",
    "AsyncSwooshClient",
    "DevKeyring",
    "HLCClock",
    "ProposalFactory",
    "RetryPolicy",
    "Signers",
    "SwooshClient",
    "dev_keyring",
    "errors",
    "load_key",
    "load_signers",
    "sign_rotation_approval",
]
