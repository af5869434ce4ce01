"""The SWOOSH Python client: HTTP clients, proposal signing and typed errors."""
