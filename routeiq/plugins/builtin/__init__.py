"""The plugins that ship with RouteIQ: guardrails (PII, prompt injection, content filter,
moderation) and the cost tracker."""
