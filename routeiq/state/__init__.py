"""Shared state: what every worker and replica must agree on, behind one ``StateStore`` interface."""
