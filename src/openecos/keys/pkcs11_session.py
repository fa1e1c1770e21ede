"""Opening a PKCS#11 token: configuration, the session, and the process's login.

Theory of operation. ``Pkcs11Config`` says where the token is (arguments
first, then ``OPENECOS_PKCS11_{MODULE,TOKEN,PIN}``, then the SoftHSM default
module). ``open_session`` returns a plain R/W session on the token and
``close_session`` gives it back. PKCS#11 login state belongs to the
application, not to a session (a second ``C_Login`` fails with
``CKR_USER_ALREADY_LOGGED_IN``; one ``C_Logout`` logs every session out), so
one dedicated session per token holds the login while any store of this
process is open on it, and every store's own session inherits it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import exceptions as p11

from openecos.keys.errors import TokenError, TokenFailure

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
ENV_MODULE = "OPENECOS_PKCS11_MODULE"
ENV_TOKEN = "OPENECOS_PKCS11_TOKEN"
ENV_PIN = "OPENECOS_PKCS11_PIN"


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Where the token is: module path, token label, user PIN (never printed)."""

    module: str
    token_label: str
    user_pin: str = field(repr=False)

    @classmethod
    def resolve(
        cls,
        module: str | Path | None = None,
        token_label: str | None = None,
        user_pin: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Pkcs11Config:
        """Arguments first, then OPENECOS_PKCS11_{MODULE,TOKEN,PIN}, then the SoftHSM default."""
        env = os.environ if environ is None else environ
        label = token_label or env.get(ENV_TOKEN)
        pin = user_pin if user_pin is not None else env.get(ENV_PIN)
        if not label:
            raise TokenError(TokenFailure.CONFIGURATION, f"no token label (set {ENV_TOKEN})")
        if pin is None:
            raise TokenError(TokenFailure.CONFIGURATION, f"no user PIN (set {ENV_PIN})")
        return cls(str(module or env.get(ENV_MODULE) or DEFAULT_MODULE), label, pin)


@dataclass(slots=True)
class _Login:
    """The process's login to one token, shared by every store open on it.

    PKCS#11 login state belongs to the application, not to a session: a
    second C_Login fails with CKR_USER_ALREADY_LOGGED_IN and one C_Logout logs
    every session out. So one dedicated session holds the login while any
    store is open, and stores open plain sessions that inherit it.
    """

    session: Any  # None where something else in the process logged in first
    pin_digest: bytes
    stores: int = 0


SessionKey = tuple[str, str, str]
_LOGINS: dict[SessionKey, _Login] = {}
_LOGINS_LOCK = threading.Lock()


def open_session(config: Pkcs11Config) -> tuple[Any, SessionKey]:
    token = _find_token(config)
    # Token serials change when a token is re-initialised, so a stale login never matches.
    key = (config.module, config.token_label, str(token.serial))
    pin_digest = hashlib.sha256(config.user_pin.encode()).digest()
    with _LOGINS_LOCK:
        login = _LOGINS.get(key)
        if login is None:
            login = _Login(_log_in(token, config), pin_digest)
            _LOGINS[key] = login
        elif not hmac.compare_digest(login.pin_digest, pin_digest):
            # The token has one user PIN and this process is logged in with it.
            raise TokenError(
                TokenFailure.PIN_INCORRECT, f"user PIN refused by {config.token_label!r}"
            )
        try:
            session = token.open(rw=True)
        except p11.PKCS11Error as exc:
            if login.stores == 0:
                _release_login(key)
            raise TokenError(TokenFailure.OPERATION_FAILED, type(exc).__name__) from None
        login.stores += 1
        return session, key


def close_session(session: Any, key: SessionKey) -> None:
    with _LOGINS_LOCK:
        # The session may already be gone with the module (finalised, token removed).
        with contextlib.suppress(p11.PKCS11Error):
            session.close()
        login = _LOGINS.get(key)
        if login is not None:
            login.stores -= 1
            if login.stores <= 0:
                _release_login(key)


def _release_login(key: SessionKey) -> None:
    login = _LOGINS.pop(key)
    if login.session is not None:
        with contextlib.suppress(p11.PKCS11Error):
            login.session.close()  # C_Logout, then C_CloseSession


def _find_token(config: Pkcs11Config) -> Any:
    try:
        library = pkcs11.lib(config.module)
    except (p11.PKCS11Error, OSError) as exc:
        raise TokenError(TokenFailure.MODULE_UNAVAILABLE, f"{config.module}: {exc}") from None
    try:
        return library.get_token(token_label=config.token_label)
    except p11.NoSuchToken:
        raise TokenError(
            TokenFailure.TOKEN_NOT_FOUND, f"no token labelled {config.token_label!r}"
        ) from None
    except p11.MultipleTokensReturned:
        raise TokenError(
            TokenFailure.CONFIGURATION, f"several tokens labelled {config.token_label!r}"
        ) from None
    except p11.PKCS11Error as exc:
        raise TokenError(TokenFailure.MODULE_UNAVAILABLE, type(exc).__name__) from None


def _log_in(token: Any, config: Pkcs11Config) -> Any:
    try:
        return token.open(rw=True, user_pin=config.user_pin)
    except p11.UserAlreadyLoggedIn:
        return None  # logged in by other code in this process; its login serves us
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise TokenError(
            TokenFailure.PIN_INCORRECT, f"user PIN refused by {config.token_label!r}"
        ) from None
    except p11.PinLocked:
        raise TokenError(TokenFailure.PIN_LOCKED, f"{config.token_label!r} is locked") from None
    except p11.PKCS11Error as exc:
        raise TokenError(TokenFailure.OPERATION_FAILED, type(exc).__name__) from None
