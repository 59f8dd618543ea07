"""Models central distributes: download, verify, smoke-test, switch, roll back."""
