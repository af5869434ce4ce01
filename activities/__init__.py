"""SWOOSH activities."""
