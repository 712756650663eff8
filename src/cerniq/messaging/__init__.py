"""The communication log and the send path: dispatch, per-channel send jobs, the outbox relay.

A message is a row in ``gold_communication_log`` before it is a job (DESIGN §7).
"""
