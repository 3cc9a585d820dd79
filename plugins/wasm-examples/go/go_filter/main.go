// go_filter: a proxy-wasm filter built with the Go SDK (proxy-wasm-go-sdk, Go 1.24+
// `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`), a port of the AssemblyScript
// examples' work to Go. It runs unchanged in Envoy.
//
// Request: a request with `x-go-deny` gets a local 403 (the upstream never sees it);
// one with `x-go-panic` panics (a fault: the gateway answers 503 and starts a fresh
// instance).
// Otherwise the upstream sees `x-go-request: 1`, the plugin configuration in
// `x-go-config`, `x-go-replace` replaced by `replaced` and `x-go-remove` removed. A
// request with `x-go-call: <token>` waits for an HTTP call to the `auth` pool
// (`GET /check`, `authorization: Bearer <token>`): a 200 adds its `x-user` answer header
// upstream as `x-go-user`, anything else is a local 403.
//
// Response: `x-go-response: 1`, and what the filter read: the `request.path`,
// `source.address`, `source.port`, `plugin_root_id`, `route_name` and `response.code` properties, and
// `x-go-hits`, a count kept in shared data (compare-and-swap) across every instance.
// Every request also increments the counter metric `go_filter_requests` and writes a
// log line.
//
// Go only: every request enqueues its path on the shared queue `go_filter.paths`; the
// registering instance, told by `OnQueueReady`, keeps the last one in shared data and
// the answer carries it in `x-go-last`. A tick every 20 ms counts into shared data,
// shown in `x-go-ticks`.
package main

import (
	"encoding/binary"
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetVMContext(&vmContext{})
}

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext{}
}

type pluginContext struct {
	types.DefaultPluginContext
	config   string
	requests proxywasm.MetricCounter
	queue    uint32
	ticks    uint64
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	if size > 0 {
		data, err := proxywasm.GetPluginConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("cannot read the configuration: %v", err)
			return types.OnPluginStartStatusFailed
		}
		p.config = string(data)
	}
	p.requests = proxywasm.DefineCounterMetric("go_filter_requests")
	queue, err := proxywasm.RegisterSharedQueue("go_filter.paths")
	if err != nil {
		proxywasm.LogCriticalf("cannot register the queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.queue = queue
	if err := proxywasm.SetTickPeriodMilliSeconds(20); err != nil {
		proxywasm.LogCriticalf("cannot set the tick: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

// OnTick counts this instance's ticks into shared data (`x-go-ticks`). The first tick
// also calls the `auth` pool from the root context (as a filter refreshing keys would);
// the answer lands in shared data (`x-go-tick-call`).
func (p *pluginContext) OnTick() {
	p.ticks++
	buf := make([]byte, 8)
	binary.LittleEndian.PutUint64(buf, p.ticks)
	must(proxywasm.SetSharedData("go_filter.ticks", buf, 0))
	if p.ticks != 1 {
		return
	}
	headers := [][2]string{
		{":method", "GET"}, {":path", "/check"}, {":authority", "auth"},
		{"authorization", "Bearer good"},
	}
	if _, err := proxywasm.DispatchHttpCall("auth", headers, nil, nil, 2000, onTickCall); err != nil {
		proxywasm.LogErrorf("http call from a tick: %v", err)
	}
}

// onTickCall keeps the status and user of the tick's call (`x-go-tick-call`).
func onTickCall(numHeaders, bodySize, numTrailers int) {
	headers, _ := proxywasm.GetHttpCallResponseHeaders()
	answer := header(headers, ":status") + " " + header(headers, "x-user")
	must(proxywasm.SetSharedData("go_filter.tick_call", []byte(answer), 0))
}

// OnQueueReady keeps the last path a request enqueued (`x-go-last`).
func (p *pluginContext) OnQueueReady(queueID uint32) {
	for {
		data, err := proxywasm.DequeueSharedQueue(queueID)
		if err != nil {
			return
		}
		must(proxywasm.SetSharedData("go_filter.last", data, 0))
	}
}

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	return &httpContext{plugin: p}
}

type httpContext struct {
	types.DefaultHttpContext
	plugin *pluginContext
	path   string
	source string
	hits   uint64
}

// property reads a string property ("" when the host has none).
func property(path ...string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return ""
	}
	return string(v)
}

// countHit adds one to the shared counter and returns the new count.
func countHit() uint64 {
	const key = "go_filter.hits"
	for i := 0; i < 16; i++ {
		data, cas, err := proxywasm.GetSharedData(key)
		var n uint64
		if err == nil && len(data) == 8 {
			n = binary.LittleEndian.Uint64(data)
		} else if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogWarnf("shared data: %v", err)
			return 0
		}
		buf := make([]byte, 8)
		binary.LittleEndian.PutUint64(buf, n+1)
		err = proxywasm.SetSharedData(key, buf, cas)
		if err == nil {
			return n + 1
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			proxywasm.LogWarnf("shared data: %v", err)
			return 0
		}
	}
	return 0
}

func deny(reason string) {
	headers := [][2]string{{"x-go-local", "1"}, {"content-type", "text/plain"}}
	if err := proxywasm.SendHttpResponse(403, headers, []byte(reason), -1); err != nil {
		proxywasm.LogErrorf("local response: %v", err)
	}
}

func (c *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	c.plugin.requests.Increment(1)
	if _, err := proxywasm.GetHttpRequestHeader("x-go-panic"); err == nil {
		panic("go filter panics as asked")
	}
	if _, err := proxywasm.GetHttpRequestHeader("x-go-deny"); err == nil {
		deny("denied by the go filter")
		return types.ActionPause
	}
	c.path = property("request", "path")
	c.source = property("source", "address")
	c.hits = countHit()
	must(proxywasm.EnqueueSharedQueue(c.plugin.queue, []byte(c.path)))
	method := property("request", "method")
	proxywasm.LogInfof("go filter: %s %s from %s", method, c.path, c.source)
	must(proxywasm.AddHttpRequestHeader("x-go-request", "1"))
	if c.plugin.config != "" {
		must(proxywasm.AddHttpRequestHeader("x-go-config", c.plugin.config))
	}
	if _, err := proxywasm.GetHttpRequestHeader("x-go-replace"); err == nil {
		must(proxywasm.ReplaceHttpRequestHeader("x-go-replace", "replaced"))
	}
	must(proxywasm.RemoveHttpRequestHeader("x-go-remove"))
	token, err := proxywasm.GetHttpRequestHeader("x-go-call")
	if err != nil {
		return types.ActionContinue
	}
	headers := [][2]string{
		{":method", "GET"}, {":path", "/check"}, {":authority", "auth"},
		{"authorization", "Bearer " + token},
	}
	if _, err := proxywasm.DispatchHttpCall("auth", headers, nil, nil, 2000, c.onAuth); err != nil {
		proxywasm.LogErrorf("http call: %v", err)
		deny("auth call failed")
		return types.ActionPause
	}
	return types.ActionPause
}

// onAuth: the auth pool's answer to the call of OnHttpRequestHeaders.
func (c *httpContext) onAuth(numHeaders, bodySize, numTrailers int) {
	headers, _ := proxywasm.GetHttpCallResponseHeaders()
	status, user := header(headers, ":status"), header(headers, "x-user")
	if status != "200" {
		deny("auth refused (" + status + ")")
		return
	}
	must(proxywasm.AddHttpRequestHeader("x-go-user", user))
	must(proxywasm.ResumeHttpRequest())
}

func (c *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	must(proxywasm.AddHttpResponseHeader("x-go-response", "1"))
	must(proxywasm.AddHttpResponseHeader("x-go-path", c.path))
	must(proxywasm.AddHttpResponseHeader("x-go-source", c.source))
	must(proxywasm.AddHttpResponseHeader("x-go-root", property("plugin_root_id")))
	must(proxywasm.AddHttpResponseHeader("x-go-route", property("route_name")))
	must(proxywasm.AddHttpResponseHeader("x-go-hits", strconv.FormatUint(c.hits, 10)))
	if last, _, err := proxywasm.GetSharedData("go_filter.last"); err == nil {
		must(proxywasm.AddHttpResponseHeader("x-go-last", string(last)))
	}
	var ticks uint64
	if data, _, err := proxywasm.GetSharedData("go_filter.ticks"); err == nil && len(data) == 8 {
		ticks = binary.LittleEndian.Uint64(data)
	}
	must(proxywasm.AddHttpResponseHeader("x-go-ticks", strconv.FormatUint(ticks, 10)))
	if answer, _, err := proxywasm.GetSharedData("go_filter.tick_call"); err == nil {
		must(proxywasm.AddHttpResponseHeader("x-go-tick-call", string(answer)))
	}
	if port, err := proxywasm.GetProperty([]string{"source", "port"}); err == nil && len(port) == 8 {
		must(proxywasm.AddHttpResponseHeader("x-go-source-port",
			strconv.FormatUint(binary.LittleEndian.Uint64(port), 10)))
	}
	if code, err := proxywasm.GetProperty([]string{"response", "code"}); err == nil && len(code) == 8 {
		status := int64(binary.LittleEndian.Uint64(code))
		must(proxywasm.AddHttpResponseHeader("x-go-status", strconv.FormatInt(status, 10)))
	}
	return types.ActionContinue
}

func header(headers [][2]string, name string) string {
	for _, h := range headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func must(err error) {
	if err != nil {
		proxywasm.LogErrorf("host call failed: %v", err)
	}
}
