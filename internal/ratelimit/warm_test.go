package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// namedConns returns the ids of the connections Redis has open for clients named name.
func namedConns(t *testing.T, admin *redis.Client, name string) (ids []int64) {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(list) {
		var id int64
		var n string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id, _ = strconv.ParseInt(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(f, "name="); ok {
				n = v
			}
		}
		if n == name {
			ids = append(ids, id)
		}
	}
	return ids
}

// NewClient opens and initializes clientWarmConns connections off the request path, so a burst of
// concurrent admits opens none on its own clock; connections Redis dropped are opened again in
// the background; Close stops the warming.
func TestClientKeepsConnectionsWarm(t *testing.T) {
	admin := needRedis(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "imagegwtest-warm-" + hex.EncodeToString(b[:])
	c, err := NewClient(context.Background(), withQuery(withQuery(testRedisURL(), "cluster", "false"), "client_name", name), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := c.Redis().(*redis.Client)
	eventually(t, "the warm connections", func() bool { return rc.PoolStats().IdleConns >= clientWarmConns })
	if n := len(namedConns(t, admin, name)); n < clientWarmConns {
		t.Fatalf("Redis sees %d connections of the client, want %d", n, clientWarmConns)
	}

	lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, admin), Timeout: 5 * time.Second})
	defer lim.Close()
	before := *rc.PoolStats()
	var wg sync.WaitGroup
	const burst = clientWarmConns / 2 // room for the releaser's and the warming's calls
	for i := range burst {
		wg.Go(func() {
			// Distinct subjects: no coalescing, one call (and one connection) each.
			d, err := lim.Admit(context.Background(), Request{Subject: KeySubject("warm" + strconv.Itoa(i)),
				Limits: Limits{Requests: perHour(10), Concurrency: 5}, Cost: oneReq})
			if err != nil || !d.Allowed || d.Degraded {
				t.Errorf("admit: %+v %v", d, err)
			}
			_ = lim.Release(context.Background(), d.Grant)
		})
	}
	wg.Wait()
	if after := rc.PoolStats(); after.Misses != before.Misses {
		t.Fatalf("a burst of %d admits opened %d connections on its own clock (pool before %+v, after %+v)",
			burst, after.Misses-before.Misses, before, *after)
	}

	// Redis drops every connection: the requests that find them dead open new ones, and the
	// Client tops the pool up again within a second or two.
	for _, id := range namedConns(t, admin, name) {
		_ = admin.ClientKillByFilter(context.Background(), "ID", strconv.FormatInt(id, 10)).Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Redis().Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after the connections were dropped: %v", err)
	}
	eventually(t, "the connections opened again", func() bool { return len(namedConns(t, admin, name)) >= clientWarmConns })

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.warmDone:
	default:
		t.Fatal("Close returned while the warming goroutine still runs")
	}
	eventually(t, "the connections closed", func() bool { return len(namedConns(t, admin, name)) == 0 })
}
