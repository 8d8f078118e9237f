#!/usr/bin/env python3
"""Verifies a jitgate audit export (JSON lines, record format 2) without jitgate.

Usage: verify_export.py EXPORT.jsonl

Each line is one record: {"v": 2, "seq": N, "prev_hash": "...", "hash": "...", "entry": {...}}.
A record's hash is the SHA-256 (hex) of the RFC 8785 canonical JSON of the line's object
without its "hash" member; its prev_hash is the hash of the record before it (64 zeros for the
first); seq counts from 1 without gaps. For jitgate's records (strings, integers, booleans,
null; ASCII member names), RFC 8785 is what json.dumps writes with sorted keys, no spaces and
no ASCII escaping. Prints the chain's head, or the first bad line, and exits 1.
"""
import hashlib
import json
import sys


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def main(path):
    seq, head = 0, "0" * 64
    with open(path, encoding="utf-8") as export:
        for line_no, line in enumerate(export, 1):
            def bad(why):
                sys.exit(f"line {line_no}: {why}")

            try:
                record = json.loads(line)
                claimed = record.pop("hash")
            except (ValueError, KeyError, AttributeError):
                bad("not an audit record")
            if record.get("v") != 2:
                bad(f"record format {record.get('v', 1)}: only format 2 is checked here")
            if record.get("seq") != seq + 1:
                bad(f"expected record {seq + 1}, found {record.get('seq')}")
            if record.get("prev_hash") != head:
                bad(f"record {seq + 1} does not link to the record before it")
            if hashlib.sha256(canonical(record).encode("utf-8")).hexdigest() != claimed:
                bad(f"record {seq + 1} was edited: its hash does not match its contents")
            seq, head = seq + 1, claimed
    print(f"ok: {seq} records, head {head}")


if __name__ == "__main__":
    main(sys.argv[1])
