"""Executors call the chosen deployment: passthrough (bytes over aiohttp) or LiteLLM's Router."""
