"""Regulation: the organisation tree, users, roles, scope, audit and public links."""
