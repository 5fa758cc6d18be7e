"""Service settings: the only place that reads the environment (`UNISD_*` variables and `.env`)."""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QUEUES = ("cpu", "gpu")
_PROCESS_SECRET = secrets.token_hex(32)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNISD_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".unisd"), description="Local state: SQLite db, broker, artifacts.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker URL (redis://...). Unset: the embedded broker in data_dir.",
    )
    auth: Literal["on", "off"] = Field("on", description="'off' is accepted only on loopback.")
    api_token: SecretStr | None = Field(
        None,
        description=(
            "Optional bootstrap admin token (acts as an admin without a user row). Prefer "
            "personal tokens: `unisd users create` then `unisd tokens create`."
        ),
    )
    session_secret: SecretStr | None = Field(
        None,
        description="Key that signs UI session cookies; browser login is disabled when unset.",
    )
    session_max_age_s: int = Field(7 * 24 * 3600, ge=60, description="UI session lifetime.")
    max_request_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest request body the API accepts."
    )
    artifact_roots: list[Path] = Field(
        default_factory=list,
        description="Folders artifacts may be served from, besides data_dir.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_url: str | None = Field(None, description="Base URL the UI uses to reach the API.")
    default_queue: Literal["cpu", "gpu"] = "cpu"
    ingest_durable_commit: bool = Field(
        False,
        description=(
            "PostgreSQL: answer `POST /runs/{id}/metrics` only once the batch's WAL is on disk. "
            "Off (the default), a crash of the database's machine can lose the last fraction "
            "of a second of acknowledged metric batches, whole (never corrupting anything), "
            "which saves a disk flush per batch; SQLite in WAL mode with synchronous=NORMAL "
            "makes the same trade. Every other write waits for the disk either way."
        ),
    )

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Settings:
        if self.auth == "off" and not is_loopback(self.host):
            raise ValueError(
                f"UNISD_AUTH=off is only allowed when the server listens on loopback, "
                f"not on {self.host!r}"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'unisd.db'}"

    @property
    def resolved_session_secret(self) -> str | None:
        """The cookie key; in auth-off local mode a random per-process key (nobody logs in)."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value()
        return _PROCESS_SECRET if self.auth == "off" else None

    @property
    def allowed_artifact_roots(self) -> list[Path]:
        return [self.data_dir.resolve(), *(root.resolve() for root in self.artifact_roots)]

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def broker_socket(self) -> Path:
        return self.data_dir.resolve() / "broker" / "redis.sock"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"redis+socket://{self.broker_socket}"

    @property
    def resolved_api_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return (self.api_url or f"http://{host}:{self.port}").rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
