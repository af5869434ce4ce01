"""SWOOSH api."""
