"""Follow-up sequences: steps, enrollment, scheduling through ``next_action_at``."""
