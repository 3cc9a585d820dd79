// correlation: every request carries `x-correlation-id` upstream (the client's, else
// the gateway's request id), and the answer carries it back to the client, with
// `x-correlation-origin: client|gateway`.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context
} from "@solo-io/proxy-runtime";
import { get_property } from "@solo-io/proxy-runtime/runtime";

class CorrelationRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Correlation(context_id, this);
  }
}

class Correlation extends Context {
  id: string = "";
  origin: string = "client";
  constructor(context_id: u32, root_context: CorrelationRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const req = stream_context.headers.request;
    this.id = req.get("x-correlation-id");
    if (this.id == "") {
      this.id = String.UTF8.decode(get_property("request\0id"));
      this.origin = "gateway";
      req.replace("x-correlation-id", this.id);
    }
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const resp = stream_context.headers.response;
    resp.replace("x-correlation-id", this.id);
    resp.replace("x-correlation-origin", this.origin);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new CorrelationRoot(context_id); }, "correlation");
