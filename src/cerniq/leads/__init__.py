"""Leads: the journey of each company through outreach, its state machine, CSV import, and the
``/api/v1/outreach/leads`` API. :func:`cerniq.leads.state.transition` is the one function that
moves a lead from one state to another."""
