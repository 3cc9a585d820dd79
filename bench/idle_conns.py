#!/usr/bin/env python3
"""Open N keep-alive connections through a proxy and keep them idle.

Each connection sends one `GET /` (HTTP/1.1, keep-alive), reads the whole
response, then stays open without sending anything. When all connections have
been tried the script prints one line

    READY opened=<n> failed=<n> seconds=<t>

and holds them until SIGTERM/SIGINT (or --hold seconds), then prints

    DONE opened=<n> failed=<n> closed_by_peer=<n>

where closed_by_peer counts connections the server closed while they were idle
(a proxy that drops idle clients would make an RSS figure meaningless).

Raise `ulimit -n` above N before running it. Standard library only.
"""

import argparse
import asyncio
import signal
import sys
import time


class Stats:
    opened = 0
    failed = 0
    closed_by_peer = 0
    first_error = None


async def read_response(reader):
    """Read one HTTP/1.1 response (Content-Length or chunked body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    if headers.get("connection") == "close":
        raise ConnectionError("server asked to close the connection")
    return status


async def one_conn(host, port, path, extra_headers, sem, stop, st, timeout):
    writer = None
    try:
        async with sem:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout)
            req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   f"{extra_headers}Connection: keep-alive\r\n\r\n").encode()
            writer.write(req)
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout)
            if not 200 <= status < 400:
                raise ConnectionError(f"status {status}")
        st.opened += 1
    except Exception as e:  # noqa: BLE001 - count and report any failure
        st.failed += 1
        if st.first_error is None:
            st.first_error = repr(e)
        if writer is not None:
            writer.close()
        return
    # Idle: wait for either the stop signal or the server closing on us.
    eof = asyncio.ensure_future(reader.read(1))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({eof, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if eof in done:
        st.closed_by_peer += 1
    else:
        eof.cancel()
    stopper.cancel()
    writer.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--conns", type=int, default=10000)
    p.add_argument("--parallel", type=int, default=200,
                   help="connections being opened at the same time")
    p.add_argument("--header", action="append", default=[],
                   help="extra request header, 'Name: value' (repeatable)")
    p.add_argument("--hold", type=float, default=600,
                   help="give up holding after this many seconds")
    p.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()

    st = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    extra = "".join(h.strip() + "\r\n" for h in a.header)
    sem = asyncio.Semaphore(a.parallel)

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(one_conn(a.host, a.port, a.path, extra, sem, stop, st,
                                            a.timeout))
             for _ in range(a.conns)]
    while st.opened + st.failed < a.conns and not stop.is_set():
        await asyncio.sleep(0.05)
    err = f" first_error={st.first_error!r}" if st.first_error else ""
    print(f"READY opened={st.opened} failed={st.failed} "
          f"seconds={time.monotonic() - t0:.1f}{err}", flush=True)

    try:
        await asyncio.wait_for(stop.wait(), a.hold)
    except asyncio.TimeoutError:
        stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"DONE opened={st.opened} failed={st.failed} "
          f"closed_by_peer={st.closed_by_peer}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
