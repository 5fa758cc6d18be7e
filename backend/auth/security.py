"""Secrets: password hashing (scrypt), API tokens (random, stored as SHA-256), signed cookies.

Pure functions over the standard library; no database here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

TOKEN_PREFIX = "unisd_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    try:
        _, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def new_token() -> tuple[str, str, str]:
    """A new API token: `(token, prefix, sha256)`. Only the hash and prefix are stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token[: len(TOKEN_PREFIX) + 6], hash_token(token)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


def sign_session(user_id: int, secret: str, max_age_s: int) -> str:
    """`<user_id>.<expiry>.<hmac>` in URL-safe base64."""
    payload = f"{user_id}.{int(time.time()) + max_age_s}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(f"{payload}.{signature}".encode()).decode()


def read_session(cookie: str, secret: str) -> int | None:
    """The user id of a valid, unexpired session cookie; None otherwise."""
    try:
        decoded = base64.urlsafe_b64decode(cookie.encode()).decode()
        user_id, expiry, signature = decoded.split(".")
        payload = f"{user_id}.{expiry}"
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected) or int(expiry) < time.time():
            return None
        return int(user_id)
    except (ValueError, UnicodeError):
        return None
