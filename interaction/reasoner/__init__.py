"""The background reasoner (docs/design.md): an interface, its implementations, and the runtime beside the loop."""
