"""Django's own sessions_tests and auth_tests, run stock and with `revocation` installed."""
