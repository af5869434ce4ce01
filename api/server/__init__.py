"""The SWOOSH HTTP API server: legacy WHOOSH paths and `/v1/projects/{project_id}/…`."""
