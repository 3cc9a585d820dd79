module gateway.example/wasm-examples/go

go 1.24

require github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0

// the SDK is vendored (third_party/, see its README): builds work offline
replace github.com/proxy-wasm/proxy-wasm-go-sdk => ./third_party/proxy-wasm-go-sdk
