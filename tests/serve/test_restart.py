"""Kill -9 a real `semrec serve` process and start it again: nothing acknowledged is lost
and the restarted server answers exactly as the killed one did."""
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def start(run_dir, port):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "semrec", "serve", str(run_dir), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"semrec serve exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("semrec serve did not come up within 60 s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url, users):
    return {u: httpx.get(f"{url}/recommend", params={"user": u, "k": 10}).json() for u in users}


def test_killed_server_loses_nothing_acknowledged(mf_run):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(mf_run, port)
    acknowledged = []
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            for j in range(40):
                body = {"user": f"w{j % 5}", "item": f"{'s' if j % 3 else 'r'}{j % 18}", "key": f"k{j}"}
                if c.post("/events", json=body).status_code == 200:
                    acknowledged.append(body["key"])
            c.post("/events", json={"user": "u2", "item": "r7", "key": "known-user-event"})
            c.delete("/users/u45")
            users = [f"w{j}" for j in range(5)] + ["u2", "u45", "u10"]
            before = answers(url, users)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert len(acknowledged) == 40
    proc = start(mf_run, port)
    try:
        after = answers(url, users)
        health = httpx.get(f"{url}/health").json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert after == before  # same items, same scores, same order
    assert health["live_users"] == 7  # w0..w4, u2, and the deleted u45
    from semrec.serve.store import EventStore, default_url

    store = EventStore(default_url(mf_run))
    assert all(store.count_events(key=k) == 1 for k in acknowledged)
    assert store.count_events() == 41


def test_an_acknowledged_event_is_applied_through_the_tower_after_kill_9(transformer_run):
    """A transformer-tower run: the events change u0's answer (their order matters to the
    tower), the server dies without a chance to flush anything, and the restarted one
    replays them in order into the same answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(transformer_run, port)
    try:
        untouched = answers(url, ["u0"])["u0"]
        events = [{"user": "u0", "item": f"r{j}"} for j in (0, 7, 2, 9)]
        assert httpx.post(f"{url}/events", json={"events": events}, timeout=10).status_code == 200
        before = answers(url, ["u0"])["u0"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert before != untouched
    proc = start(transformer_run, port)
    try:
        after = answers(url, ["u0"])["u0"]
        history = httpx.get(f"{url}/history", params={"user": "u0"}).json()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert after == before  # same items, same scores, same order
    live = [x["item"] for x in history["items"] if x["live"]]
    assert sorted(live) == ["r0", "r2", "r7", "r9"]  # all four acknowledged events, once each
