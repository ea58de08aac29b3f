"""A/B experiments between routing strategies: the pure core.

``assignment``: which arm a request's unit (team, user, session or request) belongs to, sticky and
deterministic on every worker, moving as few units as possible when weights change. ``summary``:
the mergeable per-arm counters the gateway keeps. ``statistics``: fixed-sample estimates, intervals
and the Bayesian probability that each arm is best. ``sequential``: the anytime-valid confidence
sequences that make peeking safe. ``verdict``: from per-arm summaries to a state and a winner.
Nothing here does I/O; the gateway wiring keeps the counters and calls these functions.
"""
