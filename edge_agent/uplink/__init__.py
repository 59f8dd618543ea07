"""Media uplink: pushes live or recorded video out to central over a WebSocket, on request."""
