"""The admin web UI: its built files (``static/``, committed; source in ``ui/``) served at ``/ui``."""
