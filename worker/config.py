"""The one settings object: every knob comes from an environment variable (docs/configuration.md).

Defaults are the embedded setup: a SQLite database and a SQLite broker under `./.proactive/`,
Slack delivery into the console inbox, offline skills. Production changes env vars only.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Directory holding the embedded database and broker files (relative to the working directory).
STATE_DIR_ENV = "PROACTIVE_HOME"
# Accepted values of LOG_FORMAT.
LOG_FORMATS = ("text", "json")


def state_dir() -> Path:
    """Where embedded files live: $PROACTIVE_HOME or ./.proactive (created on demand)."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".proactive").resolve()


def _default_database_url() -> str:
    return f"sqlite:///{state_dir() / 'proactive.db'}"


def _default_broker_url() -> str:
    return f"proactive+sqlite:///{state_dir() / 'broker.db'}"


class Settings(BaseSettings):
    """Process-wide configuration, read once from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(default_factory=_default_database_url)
    broker_url: str = Field(default_factory=_default_broker_url)

    slack_signing_secret: str = ""
    slack_bot_token: str = ""
    slack_api_url: str = "https://slack.com/api/"

    google_client_id: str = ""
    google_client_secret: str = ""
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"  # the consent screen (OAuth connect)
    google_api_url: str = ""
    google_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    pubsub_audience: str = ""
    pubsub_service_account: str = ""
    gmail_pubsub_topic: str = ""

    recording_webhook_secret: str = ""
    # Signs Google connect links and OAuth `state` (worker/google/oauth.py): comma-separated, the first
    # signs, every one verifies (rotation); at least 32 characters each.
    oauth_state_secret: str = ""
    encryption_keys: str = ""
    admin_token: str = ""
    # Signs the admin pages' login links, session cookies and CSRF tokens (worker/access/admin_auth.py):
    # comma-separated, the first signs, every one verifies (rotation); at least 32 characters each.
    admin_session_secret: str = ""
    app_url: str = "http://127.0.0.1:8000"

    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_model: str = "gpt-4o-mini"

    # Outbound API clients (worker/clients/). Timeouts in seconds; prices in USD.
    llm_timeout_s: float = 30.0  # one chat completion; the step's soft limit (60 s) stays above it
    llm_max_tokens: int = 1024  # completion budget per call
    llm_price_per_1k_tokens: float = 0.0  # USD per 1,000 tokens (in + out); 0 = cost not tracked
    # Calls to the LLM endpoint per minute, shared by every worker (one rate_slots key); 0 = unpaced.
    # 300 stays under the usual first-tier account limit (500 requests/min for small models).
    llm_requests_per_min: float = 300.0
    google_timeout_s: float = 20.0  # per Google HTTP request, token refresh included
    google_pacing: bool = Field(default=True, alias="PROACTIVE_GOOGLE_PACING")  # per-user quota slots (DB)
    instantly_api_url: str = "https://api.instantly.ai/api/v2"
    instantly_timeout_s: float = 20.0  # per Instantly HTTP request
    # Calls per second to one org's Instantly workspace, shared by every worker; 0 = unpaced. Instantly
    # allows 100/s and 6,000/min per workspace, shared with the customer's other tools: we take a fifth.
    instantly_requests_per_s: float = 20.0

    # Engine tunables (not part of the public contract; docs/architecture.md explains the defaults).
    sequence_modules: str = Field(default="sequences", alias="PROACTIVE_SEQUENCE_MODULES")
    job_deadline_s: int = Field(default=15 * 60, alias="PROACTIVE_JOB_DEADLINE_S")
    lease_grace_s: int = Field(default=15, alias="PROACTIVE_LEASE_GRACE_S")
    requeue_after_s: int = Field(default=30, alias="PROACTIVE_REQUEUE_AFTER_S")
    # each worker beats this often; a claimant silent for worker_dead_after_s loses its running steps
    worker_heartbeat_s: float = Field(default=2.0, alias="PROACTIVE_WORKER_HEARTBEAT_S")
    worker_dead_after_s: float = Field(default=10.0, alias="PROACTIVE_WORKER_DEAD_AFTER_S")
    retry_base_s: float = Field(default=2.0, alias="PROACTIVE_RETRY_BASE_S")
    inline_max_steps: int = Field(default=20, alias="PROACTIVE_INLINE_MAX_STEPS")
    inline_budget_s: float = Field(default=5.0, alias="PROACTIVE_INLINE_BUDGET_S")
    # Ready sibling steps this process ran in at most this many ms together run one after another in the
    # task that made them ready, not published to run in parallel (worker/engine/durations.py); 0: never.
    inline_join_ms: float = Field(default=25.0, ge=0, alias="PROACTIVE_INLINE_JOIN_MS")
    dry_run: bool = Field(default=False, alias="PROACTIVE_DRY_RUN")
    undo_window_s: float = Field(default=30.0, alias="PROACTIVE_UNDO_WINDOW_S")  # "Send now" -> actual send
    task_events: bool = Field(default=False, alias="PROACTIVE_TASK_EVENTS")
    # The longest a publish waits for a broker that does not answer (seconds): then it gives up, logged,
    # and the sweeper re-publishes the committed step (worker/celery_app.py sets the socket timeouts).
    broker_timeout_s: float = Field(default=2.0, gt=0, alias="PROACTIVE_BROKER_TIMEOUT_S")
    recover_on_start: bool = Field(default=True, alias="PROACTIVE_RECOVER_ON_START")
    # kombu's ack emulation on Redis (worker/celery_app.py `broker_conf`): off, a message a worker
    # fetched lives in that worker's memory until acked (put back on the queue at a warm shutdown or
    # when a pool child dies), and the sweeper re-publishes from the rows after a SIGKILL.
    redis_ack_emulation: bool = Field(default=False, alias="PROACTIVE_REDIS_ACK_EMULATION")
    sql_echo: bool = Field(default=False, alias="PROACTIVE_SQL_ECHO")
    # Log lines (worker/logs.py): "text" for people (the demo, the CLI), "json" for the fleet.
    log_format: str = "text"

    # Crons (worker/crons/tasks.py, beat_schedule.py). Both are for tests and demos; leave unset in production.
    cron_clock_file: str = Field(default="", alias="PROACTIVE_CRON_CLOCK_FILE")  # file holding "now" (ISO)
    beat_tick_s: float = Field(default=0.0, alias="PROACTIVE_BEAT_TICK_S")  # > 0: every cron ticks this often

    # Events API limit per org (webhooks/api.py): a token bucket in rate_slots shared by every web
    # worker; over it POST /api/events answers 429 with Retry-After. Rate 0 = no limit.
    org_events_per_s: float = Field(default=20.0, alias="PROACTIVE_ORG_EVENTS_PER_S")
    org_events_burst: int = Field(default=100, alias="PROACTIVE_ORG_EVENTS_BURST")

    # Slack delivery (worker/slack/delivery.py). Slack allows about one message per second per channel.
    slack_channel_interval_s: float = Field(default=1.0, alias="PROACTIVE_SLACK_CHANNEL_INTERVAL_S")
    delivery_max_attempts: int = Field(default=5, alias="PROACTIVE_DELIVERY_MAX_ATTEMPTS")  # 5xx/network tries

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, url: str) -> str:
        """Accept the usual `postgres://` spellings and always use psycopg 3."""
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        """`text` or `json`, in any case."""
        value = value.strip().lower()
        if value not in LOG_FORMATS:
            raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} (got {value!r})")
        return value

    @property
    def is_sqlite(self) -> bool:
        """True on the embedded database."""
        return self.database_url.startswith("sqlite")

    @property
    def sequence_module_list(self) -> tuple[str, ...]:
        """Modules imported at start-up so their sequences register themselves."""
        return tuple(m.strip() for m in self.sequence_modules.split(",") if m.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (read once; `reset_settings()` re-reads them in tests)."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings so the next `get_settings()` reads the environment again."""
    get_settings.cache_clear()
