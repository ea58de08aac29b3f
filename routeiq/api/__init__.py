"""HTTP API: the OpenAI-compatible data plane, health, admin, and the error envelope they share."""
