// Split-view upstream: Go's net/http ServeMux. A guarded handler for
// /api/v1/admin/users (and below) and an unguarded catch-all; each answers which
// handler ran, r.URL.Path (decoded), and the identity headers as r.Header exposes them.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func answer(handler string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "handler=%s\nstack=go\npath=%s\n", handler, strconv.Quote(r.URL.Path))
		for _, v := range r.Header.Values("X-User-Id") {
			fmt.Fprintf(&b, "user_id=%s\n", v)
		}
		for _, v := range r.Header.Values("X-Scopes") {
			fmt.Fprintf(&b, "scopes=%s\n", v)
		}
		w.Header().Set("content-type", "text/plain")
		_, _ = w.Write([]byte(b.String()))
	}
}

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/admin/users", answer("guarded"))
	mux.HandleFunc("/api/v1/admin/users/", answer("guarded"))
	mux.HandleFunc("/", answer("public"))
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
