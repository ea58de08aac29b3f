"""The ASGI middleware stack; ``routeiq.app.middleware_stack`` declares its order."""
