"""Verify an authd access token with an independent JWT implementation (PyJWT).

usage: verify_pyjwt.py eddsa JWKS_JSON TOKEN ISSUER AUDIENCE
       verify_pyjwt.py hs256 SECRET TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON, or `REFUSED <why>` (PyJWT's exception class) when the
token does not verify; both exit 0. Anything else (a missing module, a JWKS PyJWT cannot
read, a bug here) is a crash: a traceback and a non-zero exit, never a refusal.
"""
import json
import sys

import jwt


class Refused(Exception):
    """A refusal of this script's own, beside PyJWT's InvalidTokenError family."""


def verify(mode: str, key_material: str, token: str, issuer: str, audience: str) -> dict:
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        raise Refused("UnexpectedTyp")
    if mode == "eddsa":
        jwks = jwt.PyJWKSet.from_json(key_material)
        keys = [k for k in jwks.keys if k.key_id == header.get("kid")]
        if not keys:
            raise Refused("UnknownKid")
        algorithms = ["EdDSA"]
        signing_key = keys[0].key
    elif mode == "hs256":
        algorithms = ["HS256"]
        signing_key = key_material
    else:
        raise ValueError(f"unknown mode {mode}")
    return jwt.decode(
        token,
        signing_key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        leeway=30,
    )


def main() -> int:
    mode, key_material, token, issuer, audience = sys.argv[1:6]
    try:
        claims = verify(mode, key_material, token, issuer, audience)
    except Refused as e:
        print(f"REFUSED {e}")
        return 0
    except jwt.InvalidTokenError as e:
        print(f"REFUSED {type(e).__name__}")
        return 0
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
