"""Sandboxed tools for the background reasoner: calculator, unit conversion, knowledge base, clock,
and search over a local document collection (`search`, `open`).

Every tool is pure and bounded (no eval, no network, no system clock; search reads a local index), so the corpus
generator can replay them to write correct tool traces. `registry.run_tool` is the single entry point.
"""
