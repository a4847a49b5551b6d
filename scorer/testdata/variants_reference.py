#!/usr/bin/env python3
"""Independent reference for scorer.UserPoint and scorer.Assign.

Prints the Go table of TestUserPointGolden (variant_test.go): for each id,
the point in [0, 1) (64-bit FNV-1a of the UTF-8 bytes, MurmurHash3 fmix64,
top 53 bits as a fraction) and its variant index under the weights
WEIGHTS. Run: python3 scorer/testdata/variants_reference.py
"""

MASK = (1 << 64) - 1
IDS = ["", "u1", "u2", "u3", "user-42", "user-43", "日本語", "a" * 100, "\x00", "42"]
WEIGHTS = [0.5, 0.3, 0.2]


def fnv1a64(data: bytes) -> int:
    h = 14695981039346656037
    for c in data:
        h ^= c
        h = (h * 1099511628211) & MASK
    return h


def fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    h ^= h >> 33
    return h


def point(user_id: str) -> float:
    return (fmix64(fnv1a64(user_id.encode("utf-8"))) >> 11) / float(1 << 53)


def assign(weights, user_id: str) -> int:
    p, upper = point(user_id), 0.0
    for i, w in enumerate(weights[:-1]):
        upper += w
        if p < upper:
            return i
    return len(weights) - 1


if __name__ == "__main__":
    for uid in IDS:
        go = '"' + uid.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        if uid == "a" * 100:
            go = 'strings.Repeat("a", 100)'
        print("\t\t{%s, %r, %d}," % (go, point(uid), assign(WEIGHTS, uid)))
