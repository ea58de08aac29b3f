"""Other APIs served through the chat-completions path: Anthropic Messages and OpenAI Responses.

A request in one of them is validated and turned into a chat-completions body when it is first read
(``inbound``), so policy, quotas, plugins and routing see the one shape they know; the chat answer
(whole or streamed) is turned back on the way out. Each direction is a small explicit module whose
mapping the tests check field by field.
"""
