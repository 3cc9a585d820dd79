"""Split-view upstream: Flask on werkzeug's server. A guarded handler for
/api/v1/admin/users (and below) and an unguarded catch-all; each answers which handler
ran, PATH_INFO as werkzeug decoded it, and the identity headers as the WSGI environ
exposes them (HTTP_X_USER_ID, HTTP_X_SCOPES: CGI-style names, where `-` and `_` fold)."""
import json
import logging
import sys

from flask import Flask, request
from werkzeug.serving import run_simple

app = Flask(__name__)
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def answer(handler):
    env = request.environ
    lines = [f"handler={handler}", "stack=flask", "path=" + json.dumps(env.get("PATH_INFO"))]
    if env.get("HTTP_X_USER_ID") is not None:
        lines.append("user_id=" + env["HTTP_X_USER_ID"])
    if env.get("HTTP_X_SCOPES") is not None:
        lines.append("scopes=" + env["HTTP_X_SCOPES"])
    return ("\n".join(lines) + "\n", 200, {"content-type": "text/plain"})


@app.route("/api/v1/admin/users", methods=METHODS)
@app.route("/api/v1/admin/users/<path:rest>", methods=METHODS)
def guarded(rest=None):
    return answer("guarded")


@app.route("/", defaults={"rest": ""}, methods=METHODS)
@app.route("/<path:rest>", methods=METHODS)
def public(rest):
    return answer("public")


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
