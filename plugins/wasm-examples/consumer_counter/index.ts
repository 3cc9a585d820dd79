// consumer_counter: counts requests per consumer (the `x-consumer` header, else
// `anonymous`) in shared data (compare-and-swap, so every instance and every reload
// counts into the same number), answers it in `x-consumer-requests`, and counts all
// requests in the counter metric `consumer_counter_requests` (on /metrics).
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
  Counter
} from "@solo-io/proxy-runtime";
import { bump } from "../shared/shared_data";

class CounterRoot extends RootContext {
  requests: Counter;
  constructor(context_id: u32) {
    super(context_id);
    this.requests = new Counter("consumer_counter_requests");
  }
  createContext(context_id: u32): Context {
    return new ConsumerCounter(context_id, this);
  }
}

class ConsumerCounter extends Context {
  count: u64 = 0;
  constructor(context_id: u32, root_context: CounterRoot) {
    super(context_id, root_context);
  }
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    let consumer = stream_context.headers.request.get("x-consumer");
    if (consumer == "") consumer = "anonymous";
    this.count = bump("consumer:" + consumer);
    (this.root_context as CounterRoot).requests.increment(1);
    return FilterHeadersStatusValues.Continue;
  }
  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.replace("x-consumer-requests", this.count.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new CounterRoot(context_id); }, "consumer_counter");
