"""Tests that need the real services running (``make services``: Redis on 127.0.0.1:6379, PostgreSQL on
127.0.0.1:5432), in-process rather than through a gateway process: the state store contract run against
memory and Redis, Redis loss and failover, the database stores on SQLite and PostgreSQL, quota
reservations and policy reload notices across workers. ``tests/unit`` needs neither service."""
