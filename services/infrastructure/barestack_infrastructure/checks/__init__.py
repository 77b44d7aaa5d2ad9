"""One module per kind of component check; each returns a CheckResult and never raises."""
