"""ONVIF camera discovery (WS-Discovery) and probing (device info, profiles, stream URIs)."""
