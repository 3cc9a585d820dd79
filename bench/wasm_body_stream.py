"""bench/wasm_body_stream.py GATEWAY_BIN FILTERS_DIR (FILTERS_DIR: where
plugins/wasm-examples/build.sh put correlation.wasm, target/wasm-filters).

A 32 MiB upload sent by a slow client (256 KiB pieces, 5 ms apart) through the
gateway to an upstream that timestamps the first body byte. Routes: no plugin, the
AssemblyScript `correlation` filter (exports proxy_on_request_body: streamed piece by
piece), and the same filter beside `mirror` (percent 0), which reads the body whole,
so the filter gets it whole as before this change. Per route: a fresh gateway; when
the upstream saw its first body byte and the whole body, against when the client
finished sending; the gateway's peak RSS (VmHWM) growth; gateway CPU."""
import os, socket, subprocess, sys, threading, time, tempfile

GW = sys.argv[1]
FILTERS = os.path.abspath(sys.argv[2])
SIZE = 32 << 20
PIECE = 256 << 10

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Upstream:
    def __init__(self):
        self.sock = socket.socket(); self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0)); self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.first = None; self.done = None; self.got = 0
        threading.Thread(target=self.serve, daemon=True).start()
    def serve(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.one, args=(c,), daemon=True).start()
    def one(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d: return
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        h = head.decode().lower()
        chunked = "transfer-encoding: chunked" in h
        if rest: self.first = self.first or time.monotonic()
        n = len(rest)
        while True:
            if not chunked and n >= SIZE: break
            if chunked and rest.endswith(b"0\r\n\r\n"): break
            d = c.recv(1 << 20)
            if not d: break
            self.first = self.first or time.monotonic()
            n += len(d)
            if chunked: rest = (rest + d)[-16:]
        self.got = n; self.done = time.monotonic()
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"); c.close()

def hwm_kib(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM"): return int(l.split()[1])

def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def run(name, plugins):
    up = Upstream()
    d = tempfile.mkdtemp()
    os.symlink(os.path.join(FILTERS, "correlation.wasm"), os.path.join(d, "correlation.wasm"))
    routes = f"""version: 1
upstreams:
  u: {{ targets: [{{ addr: "127.0.0.1:{up.port}" }}] }}
routes:
  - name: r
    match: {{ path_prefix: / }}
    upstream: u
    max_body_size: 64MiB
    plugins: {plugins}
"""
    open(os.path.join(d, "routes.yaml"), "w").write(routes)
    port, mport = free_port(), free_port()
    env = dict(os.environ, PORT=str(port), METRICS_PORT=str(mport), BIND_ADDRESS="127.0.0.1",
               GATEWAY_WORKERS="2", ADMIN_TOKEN="x", LOG_LEVEL="warn")
    gw = subprocess.Popen([GW, "--config", os.path.join(d, "routes.yaml")], env=env,
                          stdout=open(os.path.join(d, "log"), "w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try: socket.create_connection(("127.0.0.1", port), 0.2).close(); break
        except OSError: time.sleep(0.05)
    else:
        print(open(os.path.join(d, "log")).read()); raise SystemExit(1)
    time.sleep(0.3)
    base, cpu0 = hwm_kib(gw.pid), cpu_s(gw.pid)
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(f"POST /up HTTP/1.1\r\nhost: gw\r\ncontent-length: {SIZE}\r\nconnection: close\r\n\r\n".encode())
    piece = b"x" * PIECE
    t0 = time.monotonic()
    for _ in range(SIZE // PIECE):
        c.sendall(piece); time.sleep(0.005)
    sent = time.monotonic()
    resp = b""
    while True:
        d2 = c.recv(65536)
        if not d2: break
        resp += d2
    status = resp[9:12].decode()
    time.sleep(0.2)
    grew, cpu = hwm_kib(gw.pid) - base, cpu_s(gw.pid) - cpu0
    gw.kill(); gw.wait()
    ms = lambda t: f"{(t - t0) * 1000:7.0f}" if t else "   none"
    print(f"{name:28} status {status}  client done {ms(sent)} ms  upstream first byte {ms(up.first)} ms  "
          f"whole {ms(up.done)} ms  got {up.got >> 20} MiB  peak RSS +{grew / 1024:5.1f} MiB  CPU {cpu:.2f} s")

run("no plugin", "[]")
run("wasm correlation (streamed)", "[{ name: wasm, module: correlation.wasm, root_id: correlation }]")
run("wasm + mirror (whole body)", "[{ name: wasm, module: correlation.wasm, root_id: correlation }, { name: mirror, upstream: u, percent: 0 }]")
