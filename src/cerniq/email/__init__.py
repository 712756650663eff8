"""Email channels: cold email through Instantly (campaigns, ``q:email:cold``), warm email through
Resend (``q:email:warm``, replied leads only), their webhooks, bounces and the suppression list,
the deliverability breaker and the analytics the runbook reads (section 6).

- :mod:`cerniq.email.cold` / :mod:`cerniq.email.warm`: the send jobs.
- :mod:`cerniq.email.campaigns`: campaigns mirrored from Instantly, pause/resume, analytics fetch.
- :mod:`cerniq.email.suppression`: bounces, complaints, unsubscribes, the suppression check.
- :mod:`cerniq.email.breaker`: bounce-rate breaker per campaign and sending domain (and the
  WhatsApp ban/block signals per phone).
- :mod:`cerniq.email.webhooks`: the Instantly and Resend webhook sources.
"""
