"""Split-view upstream: FastAPI on uvicorn. A guarded handler for /api/v1/admin/users
(and below) and an unguarded catch-all; each answers which handler ran, the path as
Starlette decoded it (scope["path"]) and the identity headers as request.headers exposes
them (getlist: every copy)."""
import json
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

app = FastAPI()
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def answer(handler: str, request: Request) -> PlainTextResponse:
    lines = [f"handler={handler}", "stack=fastapi", "path=" + json.dumps(request.scope["path"])]
    lines += ["user_id=" + v for v in request.headers.getlist("x-user-id")]
    lines += ["scopes=" + v for v in request.headers.getlist("x-scopes")]
    return PlainTextResponse("\n".join(lines) + "\n")


@app.api_route("/api/v1/admin/users", methods=METHODS)
async def guarded(request: Request):
    return answer("guarded", request)


@app.api_route("/api/v1/admin/users/{rest:path}", methods=METHODS)
async def guarded_below(rest: str, request: Request):
    return answer("guarded", request)


@app.api_route("/{rest:path}", methods=METHODS)
async def public(rest: str, request: Request):
    return answer("public", request)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
