"""Who may call what, how much, and under which rules: identity, virtual keys, policy and quotas."""
