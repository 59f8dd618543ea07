"""Models that learn from the regulators' verdicts: labels, datasets, the model registry."""
