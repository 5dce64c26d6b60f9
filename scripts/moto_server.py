#!/usr/bin/env python3
"""Run moto server (local DynamoDB, SQS, Secrets Manager) for the integration tests.

Binds 127.0.0.1 on a port the OS picks, prints exactly `MOTO_PORT=<port>` on stdout once
the server answers HTTP, and serves until SIGTERM/SIGINT or until its stdin (when that is
a pipe) is closed, so it dies with the script that started it even if that
script is killed too hard to clean up. Nothing else is written to stdout.

Usage: python scripts/moto_server.py [--port N] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
import time
import urllib.error
import urllib.request

from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0


def fail(message: str) -> int:
    print(f"moto_server: {message}", file=sys.stderr, flush=True)
    return 1


def answers_http(port: int) -> bool:
    # A direct opener: an HTTP(S)_PROXY in the environment must not capture loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{HOST}:{port}/moto-api/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means it is serving
    except OSError:
        return False


def stdin_is_a_lifeline() -> bool:
    """True when stdin is a pipe or socket.

    /dev/null or a file would read EOF at once, and reading a terminal from the background
    stops the process (SIGTTIN); there, signals alone stop the server.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def watch_stdin(stop: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds
    # its lock, and the interpreter aborts at shutdown trying to take it.
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0, the OS picks)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server = ThreadedMotoServer(ip_address=HOST, port=args.port, verbose=False)
    # start() waits forever if binding fails inside its thread: bound it.
    starter = threading.Thread(target=server.start, daemon=True)
    starter.start()
    starter.join(START_TIMEOUT_SECONDS)
    if starter.is_alive():
        return fail(f"server did not bind {HOST}:{args.port} within {START_TIMEOUT_SECONDS:.0f}s")
    _, port = server.get_host_and_port()

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers_http(port):
        if time.monotonic() > deadline or stop.is_set():
            server.stop()
            return fail(f"server on {HOST}:{port} did not answer HTTP")
        time.sleep(0.05)

    print(f"MOTO_PORT={port}", flush=True)
    # Whoever started us may stop reading stdout: anything printed later goes to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    print(f"moto_server: serving on http://{HOST}:{port}", file=sys.stderr, flush=True)

    if stdin_is_a_lifeline():
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    stop.wait()

    server.stop()
    print("moto_server: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
