"""The city archive: recordings kept at central per site policy, checked against the chain."""
