"""The background reasoner (DESIGN §5): an interface, its implementations, and the runtime beside the loop."""
