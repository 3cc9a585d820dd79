"""Split-view upstream: Flask on werkzeug's server (`flask_app.py PORT`), or on the
standard library's wsgiref server (`flask_app.py PORT wsgiref`). A guarded handler for
/api/v1/admin/users (and below) and an unguarded catch-all; each answers which handler
ran, PATH_INFO as the server decoded it, and the identity headers as the WSGI environ
exposes them (HTTP_X_USER_ID, HTTP_X_SCOPES: CGI-style names, where `-` and `_` fold;
werkzeug drops header names with `_`, wsgiref folds them into the same key)."""
import json
import logging
import sys

from flask import Flask, request
from werkzeug.serving import run_simple
from wsgiref.simple_server import WSGIRequestHandler, make_server

app = Flask(__name__)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def answer(handler):
    env = request.environ
    lines = [f"handler={handler}", "stack=" + STACK, "path=" + json.dumps(env.get("PATH_INFO"))]
    if env.get("HTTP_X_USER_ID") is not None:
        lines.append("user_id=" + env["HTTP_X_USER_ID"])
    if env.get("HTTP_X_SCOPES") is not None:
        lines.append("scopes=" + env["HTTP_X_SCOPES"])
    return ("\n".join(lines) + "\n", 200, {"content-type": "text/plain"})


STACK = "wsgiref" if sys.argv[2:] == ["wsgiref"] else "flask"


@app.route("/api/v1/admin/users", methods=METHODS)
@app.route("/api/v1/admin/users/<path:rest>", methods=METHODS)
def guarded(rest=None):
    return answer("guarded")


@app.route("/", defaults={"rest": ""}, methods=METHODS)
@app.route("/<path:rest>", methods=METHODS)
def public(rest):
    return answer("public")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    if STACK == "wsgiref":
        make_server("127.0.0.1", int(sys.argv[1]), app, handler_class=QuietHandler).serve_forever()
    else:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
