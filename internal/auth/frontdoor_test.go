package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/store"
)

// downStore is a key store that cannot be reached.
type downStore struct{ store.Store }

func (downStore) KeyByHash(context.Context, string) (*store.Key, error) {
	return nil, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
}

// TestStoreOutageReachesClientsAs503RetryAfter checks what a client sees when the key store is
// down and its key is not cached: 503 in the OpenAI envelope with Retry-After, and no internals.
func TestStoreOutageReachesClientsAs503RetryAfter(t *testing.T) {
	a := auth.New(downStore{}, auth.Options{Timeout: time.Second})
	_, err := a.Authenticate(context.Background(), "Bearer igw_notcachednotcachednotcached")
	if err == nil {
		t.Fatal("authenticated against a store that is down")
	}
	rec := httptest.NewRecorder()
	frontdoor.WriteError(rec, err)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := rec.Header().Get("retry-after-ms"); got != "1000" {
		t.Errorf("retry-after-ms %q, want 1000", got)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `"service_unavailable"`) || strings.Contains(body, "10.0.0.5") || strings.Contains(body, "notcached") {
		t.Errorf("body %s: want service_unavailable without internals or the key", body)
	}
}
