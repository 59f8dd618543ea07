"""Central server: ingests edge events, keeps the organisation tree, relays video to regulators."""

__version__ = "0.1.0"
