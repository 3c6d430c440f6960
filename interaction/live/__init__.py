"""Live sessions: the WebSocket server, its protocol, the slot engine and a client."""
