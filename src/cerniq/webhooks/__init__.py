"""Vendor webhooks: ingest endpoints, the raw event store, normalization and processing jobs."""
