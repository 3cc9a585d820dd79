"""The gRPC service the Rust SDK filter calls (tests/wasm_sdk_go_cpp.rs): grpcio's own
server (a thread pool, HTTP/2 in plaintext on 127.0.0.1), no protoc: the one unary
method `/check.Checker/Check` takes and answers raw bytes (no (de)serializers).

    grpc_checker.py [PORT]   # PORT 0 or none: a free port; prints `port N` once serving

The request decides: `allow` -> `allow`, `deny` -> `deny`, `meta` -> the value of the
`x-from` invocation metadata, `refuse` -> status PERMISSION_DENIED ("not on the list"),
`slow` -> `allow` after 5 s; `hold` -> `allow` after 10 s unless the client cancels
the call first (its stream reset); `after-hold` -> `allow` once a `hold` call is in (at
most 5 s); `held` -> how the latest `hold` ended (`cancelled`, `finished`, or `none`
yet); anything else -> INVALID_ARGUMENT."""
import sys
import threading
import time
from concurrent import futures

import grpc

# how each `hold` call ended, in order
HOLDS = []
# set once a `hold` call is in
HOLDING = threading.Event()


def check(request, context):
    word = request.decode("utf-8", "replace")
    if word in ("allow", "deny"):
        return word.encode()
    if word == "meta":
        metadata = dict(context.invocation_metadata())
        return metadata.get("x-from", "").encode()
    if word == "refuse":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not on the list")
    if word == "slow":
        time.sleep(5)
        return b"allow"
    if word == "after-hold":
        HOLDING.wait(5)
        return b"allow"
    if word == "hold":
        HOLDING.set()
        deadline = time.time() + 10
        while context.is_active() and time.time() < deadline:
            time.sleep(0.02)
        HOLDS.append("finished" if context.is_active() else "cancelled")
        return b"allow"
    if word == "held":
        return (HOLDS[-1] if HOLDS else "none").encode()
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown word {word!r}")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(
        "check.Checker",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check, request_deserializer=None, response_serializer=None
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    if port == 0:
        sys.exit("cannot bind 127.0.0.1")
    server.start()
    print(f"port {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
