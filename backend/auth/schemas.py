"""Request and response models of accounts, tokens and login."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["admin", "member", "viewer"]
Scope = Literal["read", "write"]
ALL: tuple[Scope, ...] = ("read", "write")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)
    role: Role = "member"
    name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=1024)


class UserUpdate(Strict):
    role: Role | None = None
    is_active: bool | None = None
    name: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=8, max_length=1024)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    name: str | None
    role: str
    is_active: bool
    created_at: datetime


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class Me(BaseModel):
    user_id: int | None
    email: str
    role: str
    scopes: list[str]


class TokenCreate(Strict):
    name: str = Field("default", min_length=1, max_length=200)
    scopes: list[Scope] = Field(default_factory=lambda: list(ALL), min_length=1)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown once, store it now.")


class Login(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)

    @field_validator("email")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()
