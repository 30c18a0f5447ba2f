#!/usr/bin/env python3
"""Test keys and JWTs for the auth-proxy benchmark.  Depends only on `cryptography`.

Sub-commands
  keys  --priv-dir D --pub-dir P
        RSA-2048 + EC P-256 key pairs and an HMAC secret.
          D/rsa_priv.pem  D/ec_priv.pem  D/hs256.secret          (private, 0600)
          P/rsa_pub.pem   P/ec_pub.pem   P/jwks.json             (public)
        hs256.secret holds 64 ASCII hex characters and NO newline; the HMAC key
        is exactly those 64 bytes (not the hex-decoded 32 bytes).

  mint  --priv-dir D --alg RS256|ES256|HS256 [claim options] [--count N --out FILE]
        Prints one compact JWS (or writes N tokens, one per line, with distinct
        sub/email, to FILE).  Option flags also produce deliberately *invalid*
        tokens for the conformance checks (expired, wrong aud, tampered, ...).
        Bulk minting for the 'fresh' (cache-miss) variant:
          --count N --subs M --jobs J
        token i gets sub = PREFIX%06d of (i mod M) and iat = now - (i div M): every
        token is distinct (no two share the (sub, iat) pair) while the claim set
        keeps the shape of the other tokens and only M subs exist (bounded
        rate-limit state).  J worker processes sign in parallel; order is kept.

Default claims: iss=https://auth.example.test aud=mcp-gateway sub=user-123
email=u@example.test org=org-1 role=developer scope="mcp:read mcp:write",
iat=now, exp=now+3600; header {alg, typ: JWT, kid}.
"""
import argparse
import base64
import json
import os
import secrets
import sys
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

KIDS = {"RS256": "bench-rsa-1", "ES256": "bench-ec-1", "HS256": "bench-hs-1"}
ISSUER = "https://auth.example.test"
AUDIENCE = "mcp-gateway"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_int(n: int, length: int | None = None) -> str:
    length = length or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(length, "big"))


def _write(path, data: bytes, mode: int):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def cmd_keys(a):
    os.makedirs(a.priv_dir, mode=0o700, exist_ok=True)
    os.makedirs(a.pub_dir, mode=0o755, exist_ok=True)
    pem_priv = dict(encoding=serialization.Encoding.PEM,
                    format=serialization.PrivateFormat.PKCS8,
                    encryption_algorithm=serialization.NoEncryption())
    pem_pub = dict(encoding=serialization.Encoding.PEM,
                   format=serialization.PublicFormat.SubjectPublicKeyInfo)

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    secret = secrets.token_hex(32).encode("ascii")

    _write(os.path.join(a.priv_dir, "rsa_priv.pem"), rsa_key.private_bytes(**pem_priv), 0o600)
    _write(os.path.join(a.priv_dir, "ec_priv.pem"), ec_key.private_bytes(**pem_priv), 0o600)
    _write(os.path.join(a.priv_dir, "hs256.secret"), secret, 0o600)
    _write(os.path.join(a.pub_dir, "rsa_pub.pem"), rsa_key.public_key().public_bytes(**pem_pub), 0o644)
    _write(os.path.join(a.pub_dir, "ec_pub.pem"), ec_key.public_key().public_bytes(**pem_pub), 0o644)

    rn = rsa_key.public_key().public_numbers()
    en = ec_key.public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KIDS["RS256"],
         "n": b64u_int(rn.n), "e": b64u_int(rn.e)},
        {"kty": "EC", "use": "sig", "alg": "ES256", "kid": KIDS["ES256"], "crv": "P-256",
         "x": b64u_int(en.x, 32), "y": b64u_int(en.y, 32)},
    ]}
    _write(os.path.join(a.pub_dir, "jwks.json"), json.dumps(jwks, indent=1).encode() + b"\n", 0o644)


def _load_priv(priv_dir, name):
    with open(os.path.join(priv_dir, name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def make_signer(alg, priv_dir, hmac_key: bytes | None = None):
    """Return fn(signing_input: bytes) -> signature bytes (JWS encoding)."""
    if alg == "none":
        return lambda data: b""
    if alg == "HS256":
        if hmac_key is None:
            with open(os.path.join(priv_dir, "hs256.secret"), "rb") as f:
                hmac_key = f.read()

        def sign_hs(data):
            h = hmac.HMAC(hmac_key, hashes.SHA256())
            h.update(data)
            return h.finalize()
        return sign_hs
    if alg == "RS256":
        key = _load_priv(priv_dir, "rsa_priv.pem")
        return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "ES256":
        key = _load_priv(priv_dir, "ec_priv.pem")

        def sign_es(data):  # JWS wants raw R||S (64 bytes), not DER
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return sign_es
    raise SystemExit(f"unsupported alg {alg!r}")


def build_token(sign, header, claims, tamper=False):
    signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64u(json.dumps(claims, separators=(",", ":")).encode()))
    sig = sign(signing_input.encode("ascii"))
    if tamper:  # flip one bit in the middle of the signature
        sig = bytearray(sig)
        sig[len(sig) // 2] ^= 0x01
        sig = bytes(sig)
    return signing_input + "." + b64u(sig)


def _header(a):
    header = {"alg": a.header_alg or a.alg, "typ": "JWT"}
    kid = a.kid if a.kid is not None else KIDS.get(a.alg)
    if kid:
        header["kid"] = kid
    return header


def _signer(a):
    hmac_key = None
    if a.hmac_key_file:  # e.g. alg-confusion attack: HS256 keyed with the RSA public PEM
        with open(a.hmac_key_file, "rb") as f:
            hmac_key = f.read()
    return make_signer(a.alg, a.priv_dir, hmac_key)


def _claims_for(a, now, sub, email, iat=None):
    c = {"iss": a.iss}
    if sub:
        c["sub"] = sub
    if a.aud:
        c["aud"] = a.aud[0] if len(a.aud) == 1 else a.aud
    if email:
        c["email"] = email
    if a.org:
        c["org"] = a.org
    if a.role:
        c["role"] = a.role
    if a.scope is not None:
        c["scope"] = a.scope
    c["iat"] = now if iat is None else iat
    if not a.no_exp:
        c["exp"] = now + a.exp_in
    if a.nbf_in is not None:
        c["nbf"] = now + a.nbf_in
    for kv in a.claim or []:
        k, _, v = kv.partition("=")
        c[k] = json.loads(v) if (v[:1] and v[:1] in "[{\"") or v.lstrip("-").isdigit() else v
    return c


def _mint_range(job):
    """Tokens lo..hi-1 of a --count run, as text (one per line).  Top level: picklable."""
    a, now, lo, hi = job
    sign = _signer(a)
    header = _header(a)
    lines = []
    for i in range(lo, hi):
        if a.subs:  # bulk fresh tokens: M subs, iat steps back one second per pass
            sub = f"{a.sub_prefix}{i % a.subs:06d}"
            iat = now - i // a.subs
        else:
            sub, iat = f"{a.sub_prefix}{i:06d}", None
        lines.append(build_token(sign, header, _claims_for(a, now, sub, f"{sub}@example.test", iat), a.tamper))
    return "\n".join(lines) + "\n" if lines else ""


def cmd_mint(a):
    now = int(time.time())
    if a.count:
        if not a.out:
            raise SystemExit("--count needs --out FILE")
        chunk = 10000
        jobs = [(a, now, lo, min(lo + chunk, a.count)) for lo in range(0, a.count, chunk)]
        with open(a.out, "w") as f:
            if a.jobs > 1 and len(jobs) > 1:
                import multiprocessing
                with multiprocessing.get_context("fork").Pool(min(a.jobs, len(jobs))) as pool:
                    for text in pool.imap(_mint_range, jobs):  # imap keeps the order
                        f.write(text)
            else:
                for job in jobs:
                    f.write(_mint_range(job))
        return
    tok = build_token(_signer(a), _header(a), _claims_for(a, now, a.sub, a.email), a.tamper)
    if a.out:
        with open(a.out, "w") as f:
            f.write(tok + "\n")
    else:
        print(tok)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    k = sp.add_parser("keys")
    k.add_argument("--priv-dir", required=True)
    k.add_argument("--pub-dir", required=True)
    k.set_defaults(fn=cmd_keys)

    m = sp.add_parser("mint")
    m.add_argument("--priv-dir", required=True)
    m.add_argument("--alg", default="RS256", choices=["RS256", "ES256", "HS256", "none"])
    m.add_argument("--header-alg", help="override the 'alg' header (sign with --alg)")
    m.add_argument("--kid", help="override kid header ('' = omit)")
    m.add_argument("--hmac-key-file", help="HS256: use this file's bytes as HMAC key")
    m.add_argument("--iss", default=ISSUER)
    m.add_argument("--aud", action="append", help="repeat for an array audience (default mcp-gateway)")
    m.add_argument("--sub", default="user-123", help="'' = omit the claim")
    m.add_argument("--sub-prefix", default="user-", help="with --count: sub = PREFIX%%06d")
    m.add_argument("--email", default="u@example.test")
    m.add_argument("--org", default="org-1")
    m.add_argument("--role", default="developer")
    m.add_argument("--scope", default="mcp:read mcp:write", help="'' = empty scope")
    m.add_argument("--no-scope", dest="scope", action="store_const", const=None)
    m.add_argument("--exp-in", type=int, default=3600, help="seconds from now (negative = expired)")
    m.add_argument("--no-exp", action="store_true")
    m.add_argument("--nbf-in", type=int)
    m.add_argument("--claim", action="append", help="extra claim k=v (v parsed as JSON if it looks like it)")
    m.add_argument("--tamper", action="store_true", help="corrupt the signature")
    m.add_argument("--count", type=int, default=0, help="mint N tokens with distinct sub into --out")
    m.add_argument("--subs", type=int, default=0,
                   help="with --count: only M distinct subs (i mod M), iat = now - (i div M): all tokens distinct")
    m.add_argument("--jobs", type=int, default=1, help="with --count: sign in J processes (order kept)")
    m.add_argument("--out")
    m.set_defaults(fn=cmd_mint)

    a = p.parse_args()
    if a.cmd == "mint" and not a.aud:
        a.aud = [AUDIENCE]
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
