"""MQTT link to central: outbox, publisher, heartbeat, commands and media upload.

Importing this package pulls no paho; `edge_agent.mqtt.sink` is what detectors import.
"""
