import os

# Before any test imports LiteLLM (through routeiq): never reach for the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
