"""Footage integrity towards central: chain links anchored there, and answers to its audits."""
