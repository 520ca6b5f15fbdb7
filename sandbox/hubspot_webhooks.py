"""Outgoing HubSpot webhooks (placeholder until the dispatcher lands)."""


class WebhookDispatcher:
    """Collects changes; delivery is switched off until ``configure`` is called."""

    def __init__(self, state) -> None:
        self.state = state
        self.enabled = False
