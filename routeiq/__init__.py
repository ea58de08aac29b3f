"""RouteIQ: an OpenAI-compatible LLM gateway that picks the right model for every request."""

import os
from importlib.metadata import PackageNotFoundError, version

# Before anything imports LiteLLM: otherwise it fetches its model cost map over the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

try:
    __version__ = version("routeiq")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
