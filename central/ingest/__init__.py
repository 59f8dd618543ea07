"""Ingest: MQTT messages from the edges, their media uploads, and commands back to the edges."""
