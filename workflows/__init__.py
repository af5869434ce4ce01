"""SWOOSH's deterministic core (statechart, state document, reducer, engine) and its Temporal workflow.

The core modules import nothing from Temporal, so replay tools and tests use them directly.
"""
