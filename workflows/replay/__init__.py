"""The SRE kit: read project histories, replay them, fold them through the pure reducer, audit records."""
