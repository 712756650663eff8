"""The phone pool: registration, status (PostgreSQL and its Redis mirror), health, reassignment."""
