"""The web edge: a thin Flask app (verify, parse, hand over, answer). `create_app()` is the factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app; `config` overrides Flask settings (tests)."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, JSON_SORT_KEYS=False)
    if config:
        app.config.update(config)

    @app.get("/healthz")
    def healthz() -> Any:
        """The process is up (no dependency checked)."""
        return jsonify(status="ok")

    return app
