"""Cerniq Outreach: B2B outreach over WhatsApp and email with reply triage and human review."""

__version__ = "0.1.0"
