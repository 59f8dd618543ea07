"""Edge agent: records key-station cameras, detects violations and reports to central."""

__version__ = "0.1.0"
