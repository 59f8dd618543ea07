"""Footage integrity: the edges' chain links anchored at central, audits, tamper findings."""
