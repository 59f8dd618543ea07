"""Retention: the legal duty to keep each camera's footage, and disk-space eviction around it."""
