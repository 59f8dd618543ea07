"""Alerts: the store, the rectification workflow, evidence, hooks and push delivery."""
