"""Local sign-in standing in for API Gateway's JWT authorizer: HS256 tokens signed with LOCAL_JWT_SECRET.

``python -m devtools.local_jwt alice`` (or ``make token USER=alice``) prints a token for user ``alice``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import Any

import jwt

# Documented in the README: a local, well-known value; never used outside the local stack.
DEFAULT_SECRET = "video-library-local-development-only-secret"  # noqa: S105
ISSUER = "video-library-local"
AUDIENCE = "video-library"
TTL_S = 12 * 3600


def local_secret() -> str:
    return os.environ.get("LOCAL_JWT_SECRET", DEFAULT_SECRET)


def mint(user: str, *, secret: str | None = None, ttl_s: int = TTL_S, **claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s, **claims}
    return jwt.encode(payload, secret or local_secret(), algorithm="HS256")


class InvalidToken(Exception):
    pass


def verify(authorization: str | None, *, secret: str | None = None) -> dict[str, str]:
    """The claims of a valid ``Bearer`` token, as API Gateway hands them to Lambda (values as strings)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise InvalidToken("no bearer token")
    token = authorization.split(" ", 1)[1].strip()
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token,
            secret or local_secret(),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return {key: value if isinstance(value, str) else str(value) for key, value in claims.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a local sign-in token.")
    parser.add_argument("user", nargs="?", default="alice")
    print(mint(parser.parse_args().user))


if __name__ == "__main__":
    main()
