"""Observability: Prometheus metrics (and, later, tracing and the decision log)."""
