// auth_gate: a header-based auth gate. Each request must carry `Authorization`; the
// filter asks the auth service (an upstream pool of routes.yaml, named by the
// configuration, default `auth`) with GET /check and the same Authorization header.
// 200: the request goes on with `x-auth-user` set from the service's `x-user` answer
// header. Anything else (or no answer): 403. No header at all: 401.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, BaseContext, registerRootContext, FilterHeadersStatusValues,
  stream_context, send_local_response, continue_request, HeaderPair, Headers,
  GrpcStatusValues
} from "@solo-io/proxy-runtime";

function pair(k: string, v: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(k), String.UTF8.encode(v));
}

function deny(status: u32, message: string): void {
  const headers: Headers = [];
  headers.push(pair("content-type", "application/json"));
  send_local_response(status, message,
    String.UTF8.encode("{\"error\":\"" + message + "\"}"), headers, GrpcStatusValues.Ok);
}

class AuthRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new AuthGate(context_id, this);
  }
  upstream(): string {
    const c = this.getConfiguration();
    return c == "" ? "auth" : c;
  }
}

class AuthGate extends Context {
  constructor(context_id: u32, root_context: AuthRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const token = stream_context.headers.request.get("authorization");
    if (token == "") {
      deny(401, "missing_credentials");
      return FilterHeadersStatusValues.StopIteration;
    }
    const headers: Headers = [];
    headers.push(pair(":method", "GET"));
    headers.push(pair(":path", "/check"));
    headers.push(pair(":authority", "auth"));
    headers.push(pair("authorization", token));
    const root = this.root_context as AuthRoot;
    root.httpCall(root.upstream(), headers, new ArrayBuffer(0), [], 1000, this,
      (origin: BaseContext, nheaders: u32, body_size: usize, trailers: u32): void => {
        const status = stream_context.headers.http_callback.get(":status");
        if (status == "200") {
          const user = stream_context.headers.http_callback.get("x-user");
          stream_context.headers.request.replace("x-auth-user", user);
          continue_request();
        } else {
          deny(403, "forbidden");
        }
      });
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new AuthRoot(context_id); }, "auth_gate");
