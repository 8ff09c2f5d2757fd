package auth_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/faultproxy"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/storetest"
	"github.com/imagegw/imagegw/providers"
)

// TestPostgresPartition runs the Authenticator on the real Postgres behind a fault proxy: with
// the network partitioned (blackhole) or the server refusing connections, an uncached key is
// refused with a 503-kind error within the store timeout (plus a margin: a deadline guarantee,
// not a performance claim) and a cached key keeps authenticating; once the network heals, the
// store answers again. It also checks that opening a store through a partition gives up.
func TestPostgresPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the partition test waits for real timeouts")
	}
	base := storetest.PostgresURL(t)
	ctx := context.Background()
	direct, err := postgres.Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close() })
	if err := direct.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret, err := auth.Create(ctx, direct, &store.Key{Name: "partition"})
	if err != nil {
		t.Fatal(err)
	}

	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if u.Port() == "" {
		target += ":5432"
	}
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	u.Host = p.Addr()
	proxied := u.String()
	st, err := postgres.Open(ctx, proxied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	const (
		ttl     = 200 * time.Millisecond
		timeout = time.Second
		margin  = 3 * time.Second
	)
	a := auth.New(st, auth.Options{TTL: ttl, Timeout: timeout, StaleFor: time.Minute, RefreshInterval: 100 * time.Millisecond})
	authenticate := func(secret string) (time.Duration, error) {
		start := time.Now()
		_, err := a.Authenticate(ctx, "Bearer "+secret)
		return time.Since(start), err
	}
	if _, err := authenticate(secret); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []faultproxy.Mode{faultproxy.Blackhole, faultproxy.Refuse} {
		t.Run(mode.String(), func(t *testing.T) {
			if err := p.SetMode(mode); err != nil {
				t.Fatal(err)
			}
			if mode == faultproxy.Refuse {
				p.CutExisting() // the server went away: pooled connections die too
			}
			time.Sleep(2 * ttl) // the cached answer is past its TTL

			for i := range 5 {
				d, err := authenticate(secret)
				if err != nil {
					t.Fatalf("cached key refused during the outage (try %d, %v): %v", i, d, err)
				}
				if d > timeout+margin {
					t.Fatalf("cached key answered after %v; store timeout %v", d, timeout)
				}
			}
			d, err := authenticate("igw_nosuchkeynosuchkeynosuchkey")
			if providers.KindOf(err) != providers.KindUnavailable {
				t.Fatalf("unknown key during the outage: want unavailable, got %v", err)
			}
			if d > timeout+margin {
				t.Fatalf("unknown key answered after %v; store timeout %v", d, timeout)
			}

			// Heal: the store answers again (an unknown key is then refused as unknown).
			if err := p.SetMode(faultproxy.Pass); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, err := authenticate("igw_nosuchkeynosuchkeynosuchkey")
				if providers.KindOf(err) == providers.KindUnauthenticated {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the store did not answer 30s after the network healed: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if _, err := authenticate(secret); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("open through a partition", func(t *testing.T) {
		if err := p.SetMode(faultproxy.Blackhole); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = p.SetMode(faultproxy.Pass) }()
		start := time.Now()
		s, err := postgres.Open(context.Background(), proxied) // no deadline of its own
		if err == nil {
			_ = s.Close()
			t.Fatal("Open through a blackholed network succeeded")
		}
		if d := time.Since(start); d > postgres.DefaultConnectTimeout+margin {
			t.Fatalf("Open gave up after %v; the connect timeout is %v", d, postgres.DefaultConnectTimeout)
		}
	})
}
