module github.com/proxy-wasm/proxy-wasm-go-sdk

go 1.24
