"""The Deal Radar application: configuration, store, queues, web app and the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import Config


def create_app(config: Config | None = None) -> Flask:
    """The web app (`gunicorn "connector:create_app()"`); imported lazily so that the command
    line and the workers do not load Flask."""
    from connector.app import create_app as build

    return build(config)
