"""A test authorization server: a key pair generated here, its JWKS, and tokens it signs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://auth.example"
AUDIENCE = "tello-mcp"
READ_ONLY = ("drone:read",)
PILOT = ("drone:read", "drone:fly")


@dataclass
class Issuer:
    """Signs tokens with a private key whose public half is in `jwks()`."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    kid: str
    alg: str
    issuer: str = ISSUER
    audience: str = AUDIENCE

    @classmethod
    def generate(cls, kind: str = "RSA", kid: str = "test-key-1") -> Issuer:
        if kind == "RSA":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid, "RS256")
        return cls(ec.generate_private_key(ec.SECP256R1()), kid, "ES256")

    def jwk(self) -> dict[str, Any]:
        public = self.key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(
        self,
        sub: str = "alice",
        scopes: tuple[str, ...] = READ_ONLY,
        *,
        lifetime_s: float = 300.0,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "exp": now + int(lifetime_s),
            "scope": " ".join(scopes),
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}  # None: leave out
        return jwt.encode(payload, self.key, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
