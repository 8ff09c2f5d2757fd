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

// Authenticate checks an Authorization header value ("Bearer <secret>") and returns the key.
// Failures are *providers.Error of KindUnauthenticated with a message saying why; a store
// failure or timeout (when no stale answer may be used) is KindUnavailable with a RetryAfter.
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
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, &providers.Error{Kind: providers.KindCanceled, Message: "The request was canceled.", Err: err}
		}
		return nil, &providers.Error{Kind: providers.KindUnavailable, Message: "The key store is unavailable; retry shortly.",
			RetryAfter: StoreRetryAfter, Err: err}
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
