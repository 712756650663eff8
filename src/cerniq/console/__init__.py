"""The operator console: a server-rendered sub-app at ``/console`` (Jinja2 + htmx)."""
