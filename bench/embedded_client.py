"""The firing side of bench/embedded.py, run as a child process inside the tree being measured.

bench/embedded.py starts it with that tree as working directory and ``PYTHONPATH`` (this tree's, or a
``--baseline-ref`` worktree's), by path through ``runpy`` so it needs nothing from that tree's
``bench`` package but ``bench.noop_dags``. At start it migrates the embedded database and loads the
sequences; then it answers one JSON line per command read on stdin:

* ``{"cmd": "org"}`` -> ``{"org": <hex>, "user": <hex>}``: a fresh enabled org and one user;
* ``{"cmd": "fire", "org", "user", "tag", "n", "threads"}`` -> ``{"t0", "t1"}``: ``n`` linear
  jobs through ``fire_event`` from ``threads`` threads, epoch seconds before and after;
* ``{"cmd": "one", "org", "user", "tag", "i"}`` -> ``{"t0", "t1", "job": <hex>}``: one job.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def make_org() -> dict[str, str]:
    """A fresh enabled org and one user in it (the bench counts jobs per org)."""
    from worker.db import session_factory
    from worker.models import Org, User

    org_id, user_id = uuid.uuid4(), uuid.uuid4()
    with session_factory().begin() as s:
        s.add(Org(id=org_id, name=f"bench {org_id.hex[:6]}", timezone="UTC", enabled=True, settings={}))
        s.flush()
        s.add(
            User(
                id=user_id,
                org_id=org_id,
                email=f"bench-{user_id.hex[:6]}@example.com",
                name="bench",
                role="member",
                timezone="UTC",
                opted_out_sequences=[],
            )
        )
    return {"org": org_id.hex, "user": user_id.hex}


def fire_one(event_type: str, cmd: dict[str, Any], i: int) -> Any:
    """``fire_event()`` one benchmark job."""
    from worker.engine.events import fire_event

    return fire_event(
        {
            "type": event_type,
            "source": "api",
            "org_id": str(uuid.UUID(cmd["org"])),
            "user_id": str(uuid.UUID(cmd["user"])),
            "payload": {"run": cmd["tag"]},
            "idempotency_key": f"bench:{cmd['tag']}:{i}",
        }
    )


def fire_many(event_type: str, cmd: dict[str, Any]) -> dict[str, float]:
    """Fire ``n`` jobs from ``threads`` threads; re-raise the first error."""
    n, threads = int(cmd["n"]), max(1, int(cmd["threads"]))

    def part(k: int) -> None:
        for i in range(k, n, threads):
            fire_one(event_type, cmd, i)

    t0 = time.time()
    with ThreadPoolExecutor(threads) as pool:
        for fut in [pool.submit(part, k) for k in range(threads)]:
            fut.result()
    return {"t0": t0, "t1": time.time()}


def main() -> None:
    """Migrate, load the sequences, then answer commands until stdin closes."""
    from worker import migrate
    from worker.engine import registry

    migrate.upgrade()
    registry.load()  # product sequences first, then bench.noop_dags replaces two of them
    from bench import noop_dags

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "org":
            out: dict[str, Any] = make_org()
        elif cmd["cmd"] == "fire":
            out = fire_many(noop_dags.LINEAR_EVENT, cmd)
        elif cmd["cmd"] == "one":
            t0 = time.time()
            res = fire_one(noop_dags.LINEAR_EVENT, cmd, int(cmd["i"]))
            out = {"t0": t0, "t1": time.time(), "job": uuid.UUID(str(res.job_id)).hex}
        else:
            raise SystemExit(f"unknown command {cmd!r}")
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
