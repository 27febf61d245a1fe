"""Verify an authd access token with an independent JWT implementation (PyJWT).

usage: verify_pyjwt.py eddsa JWKS_JSON TOKEN ISSUER AUDIENCE
       verify_pyjwt.py hs256 SECRET TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON; exits non-zero when verification fails.
"""
import json
import sys

import jwt


def main() -> int:
    mode, key_material, token, issuer, audience = sys.argv[1:6]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        print(f"unexpected typ {header.get('typ')!r}", file=sys.stderr)
        return 1
    if mode == "eddsa":
        jwks = jwt.PyJWKSet.from_json(key_material)
        key = next(k for k in jwks.keys if k.key_id == header["kid"])
        algorithms = ["EdDSA"]
        signing_key = key.key
    elif mode == "hs256":
        algorithms = ["HS256"]
        signing_key = key_material
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    claims = jwt.decode(
        token,
        signing_key,
        algorithms=algorithms,
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        leeway=30,
    )
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
