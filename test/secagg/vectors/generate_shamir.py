"""Regenerates shamir.json: known answers for protocol/secagg/shamir.ts, computed independently
with Python integers.

Scheme (see shamir.ts): field GF(p), p = 2^24 + 43; a 32-byte secret is cut into eleven
big-endian chunks of 3 bytes (the last of 2 bytes); chunk j is shared with the polynomial
f_j(x) = chunk_j + sum_d a_{j,d} x^d (mod p); a share is the eleven values f_j(x) as uint32
little-endian. Coefficients here are fixed (derived from SHA-256 of a label), not random.

Usage: python3 test/secagg/vectors/generate_shamir.py > test/secagg/vectors/shamir.json
"""
import hashlib
import json

P = 2**24 + 43
CHUNKS = 11


def is_prime(n):
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def chunks(secret):
    return [int.from_bytes(secret[3 * j:3 * j + 3], "big") for j in range(CHUNKS)]


def coefficient(label, j, d):
    h = hashlib.sha256(f"{label}/{j}/{d}".encode()).digest()
    return int.from_bytes(h[:8], "big") % P


def share(secret, coefficients, x):
    out = b""
    for j, s in enumerate(chunks(secret)):
        value = s
        for d, a in enumerate(coefficients[j], start=1):
            value = (value + a * pow(x, d, P)) % P
        out += value.to_bytes(4, "little")
    return out


def case(label, secret, threshold, xs):
    coefficients = [[coefficient(label, j, d) for d in range(1, threshold)] for j in range(CHUNKS)]
    return {
        "label": label,
        "secret": secret.hex(),
        "threshold": threshold,
        "xs": xs,
        "coefficients": coefficients,
        "shares": [share(secret, coefficients, x).hex() for x in xs],
    }


assert is_prime(P)
cases = [
    case("zero secret, t=2", bytes(32), 2, [1, 2, 3]),
    case("counting secret, t=3", bytes(range(32)), 3, [1, 2, 3, 4, 5, 6]),
    case("all-ones secret, t=4", b"\xff" * 32, 4, [3, 9, 17, 200, 1000, 65537, 16777258]),
    case("hashed secret, t=5", hashlib.sha256(b"hearth shamir vector").digest(), 5, list(range(1, 11))),
]
print(json.dumps({"prime": P, "source": "generate_shamir.py (Python integers)", "cases": cases}, indent=1))
