"""RouteIQ benchmark harness (``python -m benchmarks.run``, ``make bench``).

Measures the gateway side by side with a zero-delay mock upstream, an aiohttp byte-passthrough
floor app and a bare ``litellm.Router`` app, and reports ratios measured in the same run: absolute
numbers on a shared 2-core machine swing by ±30-50%, ratios measured together do not.
"""
