package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/providers"
)

// countingStore counts key lookups reaching the real store.
type countingStore struct {
	store.Store
	lookups atomic.Int64
}

func (c *countingStore) KeyByHash(ctx context.Context, hash string) (*store.Key, error) {
	c.lookups.Add(1)
	return c.Store.KeyByHash(ctx, hash)
}

func newStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: st}
}

func kindOf(err error) providers.Kind { return providers.KindOf(err) }

func TestCreateStoresOnlyTheHash(t *testing.T) {
	st := newStore(t)
	k := &store.Key{Name: "app"}
	secret, err := Create(context.Background(), st, k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q is not a prefixed random key", secret)
	}
	got, err := st.Key(context.Background(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != Hash(secret) || strings.Contains(got.Hash, secret) || !strings.HasPrefix(secret, got.Prefix) {
		t.Fatalf("stored key %+v does not match the secret", got)
	}
	other, _ := Create(context.Background(), st, &store.Key{Name: "b"})
	if other == secret {
		t.Fatal("two keys share a secret")
	}
}

func TestAuthenticateCachesAndSaysWhy(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	secret, err := Create(ctx, st, &store.Key{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(st, time.Hour)
	now := time.Now()
	a.now = func() time.Time { return now }

	// Steady state: many concurrent requests, one store round trip.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.Authenticate(ctx, "Bearer "+secret); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := st.lookups.Load(); n != 1 {
		t.Fatalf("store lookups = %d, want 1", n)
	}

	for _, h := range []string{"", "Basic abc", "Bearer ", "Bearer igw_wrong"} {
		_, err := a.Authenticate(ctx, h)
		if kindOf(err) != providers.KindUnauthenticated {
			t.Fatalf("header %q: want unauthenticated, got %v", h, err)
		}
	}
	if _, err := a.Authenticate(ctx, "Bearer igw_wrongwrongwrong"); !strings.Contains(err.Error(), "Incorrect API key") || strings.Contains(err.Error(), "wrongwrongwrong") {
		t.Fatalf("bad-key message: %v", err)
	}

	// Revocation takes effect once the cached answer ages out.
	k, _ := st.KeyByHash(ctx, Hash(secret))
	if err := st.RevokeKey(ctx, k.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+secret); err != nil {
		t.Fatal("cached key refused before its TTL:", err)
	}
	now = now.Add(2 * time.Hour)
	_, err = a.Authenticate(ctx, "Bearer "+secret)
	if kindOf(err) != providers.KindUnauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("want a revoked-key error, got %v", err)
	}
}

func TestExpiredKeyAndForget(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute).UTC()
	secret, err := Create(ctx, st, &store.Key{Name: "temp", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(st, time.Hour)
	k, err := a.Authenticate(ctx, "Bearer "+secret)
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return exp.Add(time.Second) }
	if _, err := a.Authenticate(ctx, "Bearer "+secret); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("want an expired-key error, got %v", err)
	}
	// Forget drops the cached answer so an in-process revocation is immediate.
	before := st.lookups.Load()
	a.Forget(k.ID)
	_, _ = a.Authenticate(ctx, "Bearer "+secret)
	if st.lookups.Load() != before+1 {
		t.Fatal("Forget did not drop the cached key")
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	st := newStore(t)
	_ = st.Store.Close()
	a := NewAuthenticator(st, time.Hour)
	_, err := a.Authenticate(context.Background(), "Bearer igw_anything_long_enough")
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindUnavailable {
		t.Fatalf("want unavailable, got %v", err)
	}
}

func TestAdminToken(t *testing.T) {
	if AdminTokenOK("Bearer x", "") || !AdminTokenOK("Bearer tok", "tok") || AdminTokenOK("Bearer tok2", "tok") || AdminTokenOK("tok", "tok") {
		t.Fatal("admin token check is wrong")
	}
}
