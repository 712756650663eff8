"""Shared building blocks: database sessions, Redis clients, paging, ids, the business clock.

Nothing in ``kit`` imports a feature package.
"""
