"""Reports per organisation subtree and period."""
