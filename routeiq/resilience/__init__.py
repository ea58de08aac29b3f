"""Resilience: circuit breakers, the traffic gate (capacity, queue, drain)."""
