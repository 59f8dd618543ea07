"""Violation detection: frames, motion gate, detector, tracker, station rules, evidence."""
