"""Routing: which deployment of a group answers a request, and why."""
