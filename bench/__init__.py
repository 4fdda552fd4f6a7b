"""The wabot benchmark: a fake Graph API, an open-loop webhook load generator, and the report."""
