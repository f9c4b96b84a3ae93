"""One row of the comparison (make compare), not a stage: Python's own answer
to the notes' question. The notes are in Python, and their callback loop is
Twisted's; asyncio is what the standard library grew since (PEP 3156), an
event loop on the system's selector (epoll on Linux) with coroutines on top.

measure runs it as  python3 - -addr HOST:PORT -n N -delay D -run TAG  with
this file on standard input, so nothing is written anywhere. It makes n
HTTP/1.0 requests at once, for the same pages with the same query as the
stages (whatToAsk and newRequest in the stages' scaffold.go), so the test
server records the run under TAG and measure can ask it for the peak in
flight. Each response is read to the end of the connection, which HTTP/1.0
closes after it.

It prints one JSON object, the part of a stage's -json summary it knows: ok,
failed, wall_ms and each request's start, end and error. measure takes the
CPU time and peak memory from the process's rusage when it exits.
"""

import argparse
import asyncio
import json
import sys
import time


def what_to_ask(req_id, addr):
    """The notes' two searches first, then the test server's generic page."""
    if req_id == 1:
        return "www.baidu.com", "/s?wd=hello"
    if req_id == 2:
        return "www.so.com", "/s?q=hello"
    return addr, "/page"


async def fetch(req_id, args, host, port, start):
    site, path = what_to_ask(req_id, args.addr)
    sep = "&" if "?" in path else "?"
    request = (f"GET {path}{sep}run={args.run}&req={req_id}&delay={args.delay} HTTP/1.0\r\n"
               f"Host: {site}\r\n\r\n")
    result = {"id": req_id, "start_ms": (time.monotonic() - start) * 1000}
    writer = None
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request.encode("ascii"))
        await writer.drain()
        response = await reader.read()  # to EOF: the server closes after an HTTP/1.0 response
        status = response.split(b"\r\n", 1)[0].split(b" ")
        if len(status) < 2 or not status[0].startswith(b"HTTP/"):
            result["error"] = "not HTTP"
        elif status[1] != b"200":
            result["error"] = "status " + status[1].decode("ascii", "replace")
    except (OSError, asyncio.IncompleteReadError) as err:
        result["error"] = str(err) or type(err).__name__
    finally:
        if writer is not None:
            writer.close()
    result["end_ms"] = (time.monotonic() - start) * 1000
    return result


async def main():
    flags = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    flags.add_argument("-addr", required=True, help="the test server's host:port")
    flags.add_argument("-n", type=int, default=5, help="number of requests, all at once")
    flags.add_argument("-delay", default="200ms", help="how long the server waits before answering each (a Go duration)")
    flags.add_argument("-run", default="asyncio", help="run=TAG in every request")
    args = flags.parse_args()
    host, _, port = args.addr.rpartition(":")
    host = host.strip("[]")  # an IPv6 address comes as [::1]:port

    start = time.monotonic()
    results = await asyncio.gather(*(fetch(i, args, host, int(port), start) for i in range(1, args.n + 1)))
    wall_ms = (time.monotonic() - start) * 1000
    ok = sum(1 for r in results if "error" not in r)
    json.dump({"requests": args.n, "ok": ok, "failed": args.n - ok, "wall_ms": wall_ms, "results": results}, sys.stdout)
    print()
    return 1 if ok < args.n else 0  # as the stages do: 1 when some requests failed


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
