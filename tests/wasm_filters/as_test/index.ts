// The test filter of tests/wasm_sdk.rs, built with the AssemblyScript SDK
// (@solo-io/proxy-runtime, ABI 0.2.0) by plugins/wasm-examples/build.sh.
// Request: adds x-as-config (the configuration), replaces x-as-replace, removes
// x-as-remove, answers 403 itself when x-as-deny is sent; counts requests in shared
// data (CAS) and in the counter metric as_filter_requests. Response: x-as-path,
// x-as-method, x-as-id, x-as-source, x-as-route, x-as-root (properties), x-as-hits
// (the shared count), x-as-body-len (the request body's length, when one was sent).
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  FilterDataStatusValues, stream_context, send_local_response, Counter, HeaderPair,
  GrpcStatusValues
} from "@solo-io/proxy-runtime";
import { BufferTypeValues, get_property, get_buffer_bytes } from "@solo-io/proxy-runtime/runtime";
import { bump } from "../../../plugins/wasm-examples/shared/shared_data";

function prop(path: string): string {
  return String.UTF8.decode(get_property(path));
}

class TestRoot extends RootContext {
  requests: Counter;
  constructor(context_id: u32) {
    super(context_id);
    this.requests = new Counter("as_filter_requests");
  }
  createContext(context_id: u32): Context {
    return new TestCtx(context_id, this);
  }
}

class TestCtx extends Context {
  path: string = "";
  method: string = "";
  id: string = "";
  source: string = "";
  route: string = "";
  root: string = "";
  hits: u64 = 0;
  bodyLen: i32 = -1;
  constructor(context_id: u32, root_context: TestRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const req = stream_context.headers.request;
    if (req.get("x-as-deny") != "") {
      const headers: HeaderPair[] = [];
      headers.push(new HeaderPair(String.UTF8.encode("x-as-local"), String.UTF8.encode("1")));
      send_local_response(403, "denied", String.UTF8.encode("denied by the filter"), headers, GrpcStatusValues.Ok);
      return FilterHeadersStatusValues.StopIteration;
    }
    req.add("x-as-config", this.root_context.getConfiguration());
    req.replace("x-as-replace", "replaced");
    req.remove("x-as-remove");
    this.path = prop("request\0path");
    this.method = prop("request.method");
    this.id = prop("request\0id");
    this.source = prop("source\0address");
    this.route = prop("route_name");
    this.root = prop("plugin_root_id");
    this.hits = bump("as_hits");
    (this.root_context as TestRoot).requests.increment(1);
    return FilterHeadersStatusValues.Continue;
  }
  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    const body = get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, body_buffer_length as u32);
    this.bodyLen = body.byteLength;
    return FilterDataStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const resp = stream_context.headers.response;
    resp.add("x-as-path", this.path);
    resp.add("x-as-method", this.method);
    resp.add("x-as-id", this.id);
    resp.add("x-as-source", this.source);
    resp.add("x-as-route", this.route);
    resp.add("x-as-root", this.root);
    resp.add("x-as-hits", this.hits.toString());
    if (this.bodyLen >= 0) resp.add("x-as-body-len", this.bodyLen.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new TestRoot(context_id); }, "as_test");
