"""The image's HEALTHCHECK: exit 0 when ``/_health/live`` answers 200, else 1.

Standard library only (the slim image has no curl). The port is ROUTEIQ_PORT when it is a plain
number, else 4000; a Kubernetes service link (``ROUTEIQ_PORT=tcp://10.0.0.1:4000``) is not a port.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("ROUTEIQ_PORT", "")
    url = f"http://127.0.0.1:{port if port.isdigit() else 4000}/_health/live"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
