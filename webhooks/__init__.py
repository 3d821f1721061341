"""The web edge: a thin Flask app. Every endpoint verifies, parses, hands over (one INSERT or one
publish) and answers; no business rule is evaluated here (docs/architecture.md).

`create_app()` builds the app with one blueprint per source, JSON errors, a request id on every
response, a 1 MiB body limit and no debug pages. When the database is down an endpoint answers 503
(Slack and Pub/Sub retry), never 200 with the event dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

# Largest request body accepted (bytes): webhooks carry ids and short texts.
MAX_BODY_BYTES = 1024 * 1024


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app; `config` overrides Flask settings (tests)."""
    # the blueprints, and the worker modules they load, load when an app is built, not whenever a module of
    # this package is imported (gunicorn's config file, webhooks.gunicorn_conf, is one, read by the master)
    from webhooks import admin, api, errors, gmail, health, oauth, pages, recording, slack
    from worker.logs import configure_process

    configure_process()  # LOG_FORMAT=json: JSON lines on stderr, gunicorn's included

    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        PROPAGATE_EXCEPTIONS=False,
        DEBUG=False,
        TESTING=False,
    )
    if config:
        app.config.update(config)
    errors.install(app)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(pages.blueprint)
    app.register_blueprint(recording.blueprint)
    app.register_blueprint(gmail.blueprint)
    app.register_blueprint(oauth.blueprint)
    app.register_blueprint(slack.blueprint)
    return app
