"""The human review queue (HITL): reviews with SLAs, assignment, escalation and resolution.

- :mod:`cerniq.reviews.service`: :func:`~cerniq.reviews.service.open_review` (called by the
  reply pipeline), assign / start / resolve / escalate, the SLA monitor and SLA figures.
- :mod:`cerniq.reviews.notify`: Slack notices for URGENT/HIGH reviews and escalations.
- :mod:`cerniq.reviews.endpoints`: ``/api/v1/outreach/reviews``;
  :mod:`cerniq.reviews.endpoints_analytics`: ``/api/v1/outreach/analytics/sla-performance``.
- :mod:`cerniq.reviews.tasks`: ``human:sla:check`` every minute, ``human:review:notify`` retries.
"""
