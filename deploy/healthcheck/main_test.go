package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDefaultURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/readyz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/readyz",
		":9000":          "http://127.0.0.1:9000/readyz",
		"[::]:8080":      "http://127.0.0.1:8080/readyz",
		"10.0.0.5:8081":  "http://10.0.0.5:8081/readyz",
		"[fd00::1]:8080": "http://[fd00::1]:8080/readyz",
		"not an address": "http://127.0.0.1:8080/readyz",
	} {
		if got := defaultURL(addr); got != want {
			t.Errorf("defaultURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if err := probe(srv.URL+"/readyz", time.Second); err != nil {
		t.Errorf("ready: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := probe(srv.URL+"/readyz", time.Second); err == nil {
		t.Error("503: no error")
	}
	if err := probe(srv.URL+"/nope", time.Second); err == nil {
		t.Error("404: no error")
	}
	srv.Close()
	if err := probe(srv.URL+"/readyz", time.Second); err == nil {
		t.Error("closed server: no error")
	}
}
