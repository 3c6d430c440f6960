"""Sandboxed tools for the background reasoner: calculator, unit conversion, knowledge base, clock.

Every tool is pure and bounded (no eval, no network, no system clock), so the synthetic-corpus
generator can replay them to write correct tool traces. `registry.run_tool` is the single entry point.
"""
