"""Demo session apps a newcomer can try at once (``GATEWAY_APPS`` imports them)."""
