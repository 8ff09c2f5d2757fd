// Package auth handles API keys: their format (random, prefixed, shown once), hashing (only
// the SHA-256 of a secret is stored), a cached lookup so a steady-state request makes no database
// round trip, and the admin token check.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// SecretPrefix starts every API key, so leaked keys are easy to recognise and scan for.
const SecretPrefix = "igw_"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Hash returns the hex SHA-256 of a secret: what the store keeps.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create generates a key's secret, fills k's ID, Prefix, Hash and CreatedAt, stores it and
// returns the secret. The secret exists only in the return value: show it once.
func Create(ctx context.Context, st store.Store, k *store.Key) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	secret := SecretPrefix + strings.ToLower(b32.EncodeToString(raw[:]))
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	k.ID = "key_" + hex.EncodeToString(id[:])
	k.Prefix = secret[:len(SecretPrefix)+8]
	k.Hash = Hash(secret)
	k.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	if k.BudgetPeriod == "" {
		k.BudgetPeriod = store.PeriodTotal
	}
	if err := st.CreateKey(ctx, k); err != nil {
		return "", err
	}
	return secret, nil
}

// Authenticator resolves bearer secrets to keys through a short-lived cache.
type Authenticator struct {
	st  store.Store
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]*lookup
}

type cached struct {
	key     *store.Key // nil: no such key
	expires time.Time
}

type lookup struct {
	done chan struct{}
	key  *store.Key
	err  error
}

// maxCached bounds the cache; past it the cache starts over (invalid keys cannot grow it forever).
const maxCached = 100_000

// NewAuthenticator returns an Authenticator whose cached answers live ttl (a revoked key stops
// working within ttl; a revocation made through this process stops it at once).
func NewAuthenticator(st store.Store, ttl time.Duration) *Authenticator {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	return &Authenticator{st: st, ttl: ttl, now: time.Now, cache: map[string]cached{}, inflight: map[string]*lookup{}}
}

// Authenticate checks an Authorization header value ("Bearer <secret>") and returns the key.
// Failures are *providers.Error of KindUnauthenticated with a message saying why; a store
// failure is KindUnavailable.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (*store.Key, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		secret, ok = strings.CutPrefix(header, "bearer ")
	}
	secret = strings.TrimSpace(secret)
	if header == "" || !ok || secret == "" {
		return nil, unauthenticated("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
	}
	k, err := a.lookup(ctx, Hash(secret))
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindUnavailable, Message: "the key store is unavailable", Err: err}
	}
	now := a.now()
	switch {
	case k == nil:
		return nil, unauthenticated("Incorrect API key provided: " + Mask(secret) + ".")
	case k.RevokedAt != nil && !k.RevokedAt.After(now):
		return nil, unauthenticated("The API key " + k.Prefix + "… was revoked.")
	case k.ExpiresAt != nil && !k.ExpiresAt.After(now):
		return nil, unauthenticated("The API key " + k.Prefix + "… expired at " + k.ExpiresAt.UTC().Format(time.RFC3339) + ".")
	}
	return k, nil
}

func unauthenticated(msg string) *providers.Error {
	return &providers.Error{Kind: providers.KindUnauthenticated, Code: "invalid_api_key", Message: msg}
}

// Mask shows a secret's first and last characters only: "igw_ab…yz".
func Mask(secret string) string {
	if len(secret) <= 10 {
		return "****"
	}
	return secret[:6] + "…" + secret[len(secret)-2:]
}

func (a *Authenticator) lookup(ctx context.Context, hash string) (*store.Key, error) {
	a.mu.Lock()
	if c, ok := a.cache[hash]; ok && a.now().Before(c.expires) {
		a.mu.Unlock()
		return c.key, nil
	}
	if l, ok := a.inflight[hash]; ok {
		a.mu.Unlock()
		select {
		case <-l.done:
			return l.key, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &lookup{done: make(chan struct{})}
	a.inflight[hash] = l
	a.mu.Unlock()

	k, err := a.st.KeyByHash(context.WithoutCancel(ctx), hash)
	if errors.Is(err, store.ErrNotFound) {
		k, err = nil, nil
	}
	l.key, l.err = k, err

	a.mu.Lock()
	delete(a.inflight, hash)
	if err == nil {
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
		ttl := a.ttl
		if k == nil {
			ttl = min(ttl, time.Second)
		}
		a.cache[hash] = cached{key: k, expires: a.now().Add(ttl)}
	}
	a.mu.Unlock()
	close(l.done)
	return k, err
}

// Forget drops every cached answer for the key id (after an update or revocation in this process).
func (a *Authenticator) Forget(keyID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, c := range a.cache {
		if c.key != nil && c.key.ID == keyID {
			delete(a.cache, h)
		}
	}
}

// AdminTokenOK compares a bearer header against the admin token in constant time. An empty
// token disables the admin API (always false).
func AdminTokenOK(header, token string) bool {
	if token == "" {
		return false
	}
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
