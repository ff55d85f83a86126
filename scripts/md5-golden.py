"""Golden vectors for the md5-mod-100 split (the seed's Option B feature flag).

For 10,000 keys, the bucket Python's hashlib gives with the seed's own expression,
int(hashlib.md5(key.encode()).hexdigest(), 16) % 100; a key goes to the canary when
its bucket is under the canary percent. The keys: DataRobot deployment ids (24 hex
digits, as MLOPS_DEPLOYMENT_ID holds them), the empty string (a missing header),
the seed's "default", numbers, printable ASCII, Unicode (hashed as UTF-8, as
str.encode() does), control characters and long keys. Deterministic: the same file
on every run, so CI can regenerate it and compare.

Usage: python3 scripts/md5-golden.py [out.json]   (default test/fixtures/md5-golden.json)
"""
import hashlib
import json
import random
import string
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/md5-golden.json"
CASES = 10_000
rng = random.Random(0x0B5EED)


def bucket(key: str) -> int:
    # The seed's entry_point.py, verbatim but for the name.
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 100


def deployment_id() -> str:
    # A Mongo ObjectId: 4 bytes of seconds (2018..2026), then 8 random bytes.
    seconds = rng.randrange(1_514_764_800, 1_798_761_600)
    return f"{seconds:08x}{rng.getrandbits(64):016x}"


# Letters from several scripts, accents, CJK, emoji (outside the BMP) and a combining mark.
UNICODE = "éüßñøÅçΩπλЖжЯ漢字かなカナ한국어עבריתعربيहिन्दी🚀🙂🧪\u0301\u00a0€"


def unicode_key() -> str:
    pool = UNICODE + string.ascii_letters + string.digits + "-_ "
    return "".join(rng.choice(pool) for _ in range(rng.randrange(1, 33)))


def ascii_key() -> str:
    return "".join(rng.choice(string.printable[:95]) for _ in range(rng.randrange(1, 65)))


def control_key() -> str:
    return "".join(chr(rng.randrange(0, 32)) if rng.random() < 0.3 else rng.choice(string.ascii_letters) for _ in range(rng.randrange(1, 17)))


def long_key() -> str:
    return "".join(rng.choice(string.hexdigits) for _ in range(rng.randrange(100, 2001)))


keys = ["", "default", "0", " ", "MLOPS_DEPLOYMENT_ID", "5e8f1a2b3c4d5e6f7a8b9c0d"]
makers = [
    (6_000, deployment_id),
    (400, lambda: deployment_id().upper()),
    (500, lambda: str(rng.getrandbits(rng.randrange(1, 129)))),
    (1_400, ascii_key),
    (1_300, unicode_key),
    (200, control_key),
    (194, long_key),
]
seen = set(keys)
for count, make in makers:
    made = 0
    while made < count:
        key = make()
        if key in seen:
            continue
        seen.add(key)
        keys.append(key)
        made += 1
assert len(keys) == CASES, len(keys)

with open(OUT, "w", encoding="utf-8") as out:
    json.dump(
        {
            "expression": "int(hashlib.md5(key.encode()).hexdigest(), 16) % 100",
            "cases": [[key, bucket(key)] for key in keys],
        },
        out,
        ensure_ascii=True,
        separators=(",", ":"),
    )
    out.write("\n")
print(f"{OUT}: {len(keys)} keys, buckets {len({bucket(k) for k in keys})} of 100 seen")
