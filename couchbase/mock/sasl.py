"""Server side of SASL: SCRAM-SHA512/256/1 (RFC 5802) and PLAIN.

Couchbase spells the SCRAM mechanisms without a hyphen after SHA.
"""

import base64
import hashlib
import hmac
import os

MECHANISMS = ("SCRAM-SHA512", "SCRAM-SHA256", "SCRAM-SHA1", "PLAIN")
_HASHES = {"SCRAM-SHA512": "sha512", "SCRAM-SHA256": "sha256", "SCRAM-SHA1": "sha1"}
ITERATIONS = 4096

# PBKDF2 with 4096 rounds costs milliseconds; a client opening many connections would pay
# it on every one, so salted passwords are cached per (mechanism, salt, password).
_salted_cache = {}


class AuthFailed(Exception):
    """The client's credentials or messages were rejected (status AUTH_ERROR)."""


def _salted(hname, password, salt):
    key = (hname, salt, password)
    sp = _salted_cache.get(key)
    if sp is None:
        if len(_salted_cache) > 1024:
            _salted_cache.clear()
        sp = hashlib.pbkdf2_hmac(hname, password.encode(), salt, ITERATIONS)
        _salted_cache[key] = sp
    return sp


def _unescape_user(name):
    return name.replace("=2C", ",").replace("=3D", "=")


def _parse_attrs(text):
    attrs = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise AuthFailed("malformed SCRAM attribute %r" % part)
        attrs[part[0]] = part[2:]
    return attrs


class SaslSession:
    """One connection's authentication exchange.

    ``lookup`` maps a user name to its password (or None for an unknown user).
    ``salt_for`` maps a user name to its SCRAM salt (stable per user, like a real server).
    """

    def __init__(self, lookup, salt_for):
        self._lookup = lookup
        self._salt_for = salt_for
        self._state = None

    def start(self, mech, data):
        """Handle SASL_AUTH. Return (done, payload, user); raise AuthFailed on rejection."""
        self._state = None
        if mech == "PLAIN":
            parts = data.split(b"\0")
            if len(parts) != 3:
                raise AuthFailed("malformed PLAIN message")
            user = parts[1].decode("utf-8", "replace")
            password = parts[2].decode("utf-8", "replace")
            expected = self._lookup(user)
            if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
                raise AuthFailed("bad credentials")
            return True, b"", user
        hname = _HASHES.get(mech)
        if hname is None:
            raise AuthFailed("unsupported mechanism %r" % mech)
        try:
            text = data.decode("utf-8")
            gs2_end = text.index(",", text.index(",") + 1)
        except (UnicodeDecodeError, ValueError):
            raise AuthFailed("malformed client-first message") from None
        gs2, bare = text[:gs2_end + 1], text[gs2_end + 1:]
        if not gs2.startswith(("n,", "y,")):
            raise AuthFailed("channel binding not supported")
        attrs = _parse_attrs(bare)
        if "n" not in attrs or "r" not in attrs:
            raise AuthFailed("client-first lacks n= or r=")
        user = _unescape_user(attrs["n"])
        password = self._lookup(user)
        salt = self._salt_for(user)
        nonce = attrs["r"] + base64.b64encode(os.urandom(12)).decode()
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), ITERATIONS)
        # An unknown user still gets a challenge; the step then fails (no user enumeration).
        self._state = (hname, user, password, salt, gs2, bare, server_first, nonce)
        return False, server_first.encode(), None

    def step(self, data):
        """Handle SASL_STEP. Return (done, payload, user); raise AuthFailed on rejection."""
        if self._state is None:
            raise AuthFailed("SASL_STEP without SASL_AUTH")
        hname, user, password, salt, gs2, bare, server_first, nonce = self._state
        self._state = None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthFailed("malformed client-final message") from None
        idx = text.rfind(",p=")
        if idx < 0:
            raise AuthFailed("client-final lacks p=")
        without_proof = text[:idx]
        attrs = _parse_attrs(without_proof)
        if attrs.get("r") != nonce:
            raise AuthFailed("nonce mismatch")
        if attrs.get("c") != base64.b64encode(gs2.encode()).decode():
            raise AuthFailed("channel binding mismatch")
        try:
            proof = base64.b64decode(text[idx + 3:], validate=True)
        except ValueError:
            raise AuthFailed("bad proof encoding") from None
        if password is None:
            raise AuthFailed("unknown user")
        digest = getattr(hashlib, hname)
        salted = _salted(hname, password, salt)
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored_key = digest(client_key).digest()
        auth_message = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth_message, hname).digest()
        if len(proof) != len(signature):
            raise AuthFailed("bad proof length")
        candidate = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(digest(candidate).digest(), stored_key):
            raise AuthFailed("bad credentials")
        server_key = hmac.new(salted, b"Server Key", hname).digest()
        verifier = hmac.new(server_key, auth_message, hname).digest()
        return True, b"v=" + base64.b64encode(verifier), user
