// cpp_filter: a proxy-wasm filter built with the C++ SDK (proxy-wasm-cpp-sdk, without
// protobuf), compiled to wasm32-wasi as a reactor by clang (zig c++). It runs unchanged
// in Envoy.
//
// Request: a request with `x-cpp-deny` gets a local 403 (the upstream never sees it);
// one with `x-cpp-panic` aborts (`logAbort`: a critical log line, then a trap; the
// gateway answers 503 and starts a fresh instance).
// Otherwise the upstream sees `x-cpp-request: 1`, the plugin configuration in
// `x-cpp-config`, `x-cpp-replace` replaced by `replaced` and `x-cpp-remove` removed. A
// request with `x-cpp-call: <token>` waits for an HTTP call to the `auth` pool
// (`GET /check`, `authorization: Bearer <token>`): a 200 adds its `x-user` answer
// header upstream as `x-cpp-user`, anything else is a local 403.
//
// Its root id is `cpp_filter` (set `root_id: cpp_filter`; under another root id the SDK
// runs a context that does nothing, as in Envoy).
//
// Response: `x-cpp-response: 1`, and what the filter read: the `request.path`,
// `source.address`, `source.port`, `plugin_root_id`, `route_name` and `response.code` properties, and
// `x-cpp-hits`, a count kept in shared data (compare-and-swap) across every instance.
// Every request also increments the counter metric `cpp_filter_requests` and writes a
// log line.

#include <cstring>
#include <string>
#include <string_view>

#include "proxy_wasm_intrinsics.h"

class FilterRoot : public RootContext {
public:
  explicit FilterRoot(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}

  bool onConfigure(size_t size) override {
    if (size > 0) {
      config_ = getBufferBytes(WasmBufferType::PluginConfiguration, 0, size)->toString();
    }
    if (proxy_define_metric(MetricType::Counter, "cpp_filter_requests",
                            sizeof("cpp_filter_requests") - 1, &requests_) != WasmResult::Ok) {
      LOG_ERROR("cannot define the metric cpp_filter_requests");
      return false;
    }
    return true;
  }

  std::string config_;
  uint32_t requests_ = 0;
};

class FilterContext : public Context {
public:
  explicit FilterContext(uint32_t id, RootContext *root) : Context(id, root) {}

  FilterHeadersStatus onRequestHeaders(uint32_t headers, bool end_of_stream) override;
  FilterHeadersStatus onResponseHeaders(uint32_t headers, bool end_of_stream) override;

private:
  FilterRoot *filterRoot() { return static_cast<FilterRoot *>(root()); }
  void deny(std::string_view reason) {
    sendLocalResponse(403, "", reason, {{"x-cpp-local", "1"}, {"content-type", "text/plain"}});
  }

  std::string path_;
  std::string source_;
  uint64_t hits_ = 0;
};

// the root id the filter answers to (routes.yaml's `root_id`, Envoy's `root_id`)
static RegisterContextFactory register_filter(CONTEXT_FACTORY(FilterContext),
                                              ROOT_FACTORY(FilterRoot), "cpp_filter");

// A string property ("" when the host has none).
static std::string property(std::initializer_list<std::string_view> path) {
  std::string out;
  if (!getValue(path, &out)) {
    return "";
  }
  return out;
}

// Adds one to the shared counter and returns the new count.
static uint64_t countHit() {
  const std::string_view key = "cpp_filter.hits";
  for (int i = 0; i < 16; i++) {
    WasmDataPtr data;
    uint32_t cas = 0;
    uint64_t n = 0;
    WasmResult r = getSharedData(key, &data, &cas);
    if (r == WasmResult::Ok && data->size() == sizeof(n)) {
      std::memcpy(&n, data->data(), sizeof(n));
    } else if (r != WasmResult::Ok && r != WasmResult::NotFound) {
      return 0;
    }
    n += 1;
    r = setSharedData(key, std::string_view(reinterpret_cast<const char *>(&n), sizeof(n)), cas);
    if (r == WasmResult::Ok) {
      return n;
    }
    if (r != WasmResult::CasMismatch) {
      return 0;
    }
  }
  return 0;
}

FilterHeadersStatus FilterContext::onRequestHeaders(uint32_t, bool) {
  auto *root = filterRoot();
  proxy_increment_metric(root->requests_, 1);
  if (getRequestHeader("x-cpp-panic")->size() > 0) {
    logAbort("cpp filter aborts as asked");
  }
  if (getRequestHeader("x-cpp-deny")->size() > 0) {
    deny("denied by the cpp filter");
    return FilterHeadersStatus::StopIteration;
  }
  path_ = property({"request", "path"});
  source_ = property({"source", "address"});
  hits_ = countHit();
  LOG_INFO("cpp filter: " + property({"request", "method"}) + " " + path_ + " from " + source_);
  addRequestHeader("x-cpp-request", "1");
  if (!root->config_.empty()) {
    addRequestHeader("x-cpp-config", root->config_);
  }
  if (getRequestHeader("x-cpp-replace")->size() > 0) {
    replaceRequestHeader("x-cpp-replace", "replaced");
  }
  removeRequestHeader("x-cpp-remove");
  auto token = getRequestHeader("x-cpp-call")->toString();
  if (token.empty()) {
    return FilterHeadersStatus::Continue;
  }
  uint32_t me = id();
  auto callback = [me](uint32_t, size_t, uint32_t) {
    auto *self = static_cast<FilterContext *>(getContext(me));
    if (self == nullptr) {
      return;
    }
    auto status = getHeaderMapValue(WasmHeaderMapType::HttpCallResponseHeaders, ":status");
    if (status->view() != "200") {
      self->deny("auth refused (" + status->toString() + ")");
      return;
    }
    auto user = getHeaderMapValue(WasmHeaderMapType::HttpCallResponseHeaders, "x-user");
    addRequestHeader("x-cpp-user", user->view());
    continueRequest();
  };
  HeaderStringPairs headers = {{":method", "GET"},
                               {":path", "/check"},
                               {":authority", "auth"},
                               {"authorization", "Bearer " + token}};
  if (root->httpCall("auth", headers, "", {}, 2000, callback) != WasmResult::Ok) {
    deny("auth call failed");
  }
  return FilterHeadersStatus::StopIteration;
}

FilterHeadersStatus FilterContext::onResponseHeaders(uint32_t, bool) {
  addResponseHeader("x-cpp-response", "1");
  addResponseHeader("x-cpp-path", path_);
  addResponseHeader("x-cpp-source", source_);
  addResponseHeader("x-cpp-root", property({"plugin_root_id"}));
  addResponseHeader("x-cpp-route", property({"route_name"}));
  addResponseHeader("x-cpp-hits", std::to_string(hits_));
  int64_t port = 0;
  if (getValue({"source", "port"}, &port)) {
    addResponseHeader("x-cpp-source-port", std::to_string(port));
  }
  int64_t status = 0;
  if (getValue({"response", "code"}, &status)) {
    addResponseHeader("x-cpp-status", std::to_string(status));
  }
  return FilterHeadersStatus::Continue;
}
