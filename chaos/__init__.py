"""SWOOSH chaos."""
