"""Operations: health, queue admin, alerts, emergency stop, recovery, maintenance, reports, checks."""
