"""Tenants, users, API tokens, roles, local-operator mode and the audit trail."""
