package imagestore

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPutServeExpire(t *testing.T) {
	s, err := Open(t.TempDir(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	name, err := s.Put([]byte("\x89PNG fake"), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/v1/images/files/" + name); rec.Code != 200 || rec.Body.String() != "\x89PNG fake" || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("serve: %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"/v1/images/files/../../etc/passwd", "/v1/images/files/" + name[:10], "/v1/images/files/.x.tmp"} {
		if rec := get(bad); rec.Code != 404 {
			t.Fatalf("%s served with %d", bad, rec.Code)
		}
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if rec := get("/v1/images/files/" + name); rec.Code != 404 {
		t.Fatalf("expired image served: %d", rec.Code)
	}
	if n, err := s.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
}
