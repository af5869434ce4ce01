"""The test kit for SWOOSH lifecycles: Temporal test servers, a worker with controllable facts, a driver."""
