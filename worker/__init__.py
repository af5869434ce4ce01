"""SWOOSH worker."""
