package ratelimit

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestParseRedisURL(t *testing.T) {
	for _, tt := range []struct {
		url     string
		mode    clusterMode
		node    string   // the node options' address
		addrs   []string // the cluster options' addresses (nil: none)
		db      int
		noClust bool // clusterAuto: the URL cannot be read as a cluster URL
	}{
		{url: "redis://127.0.0.1:6379/0", mode: clusterAuto, node: "127.0.0.1:6379", addrs: []string{"127.0.0.1:6379"}},
		{url: "redis://127.0.0.1:6379/2", mode: clusterAuto, node: "127.0.0.1:6379", db: 2, noClust: true},
		{url: "redis://127.0.0.1:6379?db=2", mode: clusterAuto, node: "127.0.0.1:6379", db: 2, noClust: true},
		{url: "redis://h1", mode: clusterAuto, node: "h1:6379", addrs: []string{"h1:6379"}},
		{url: "rediss://h1:7000?skip_verify=true", mode: clusterAuto, node: "h1:7000", noClust: true},
		{url: "redis://h1:7000?cluster=auto", mode: clusterAuto, node: "h1:7000", addrs: []string{"h1:7000"}},
		{url: "redis://h1:7000?cluster=false", mode: clusterNo, node: "h1:7000"},
		{url: "redis://h1:7000/5?cluster=false", mode: clusterNo, node: "h1:7000", db: 5},
		{url: "redis://h1:7000?cluster=true", mode: clusterYes, node: "h1:7000", addrs: []string{"h1:7000"}},
		{url: "redis://h1:7000/0?cluster=true", mode: clusterYes, node: "h1:7000", addrs: []string{"h1:7000"}},
		{url: "redis://h1:7000?addr=h2:7001&addr=h3:7002", mode: clusterYes, node: "h1:7000",
			addrs: []string{"h1:7000", "h2:7001", "h3:7002"}},
		{url: "rediss://u:p@h1:7000?addr=h2:7001&cluster=true&max_redirects=5", mode: clusterYes, node: "h1:7000",
			addrs: []string{"h1:7000", "h2:7001"}},
	} {
		u, err := parseRedisURL(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if u.mode != tt.mode || u.node.Addr != tt.node || u.node.DB != tt.db {
			t.Errorf("%s: mode %d node %s db %d, want %d %s %d", tt.url, u.mode, u.node.Addr, u.node.DB, tt.mode, tt.node, tt.db)
		}
		if o := u.node; !o.ContextTimeoutEnabled || o.MaxRetries != -1 || o.PoolSize != clientPoolSize || o.ReadTimeout != time.Second {
			t.Errorf("%s: node options not tuned: %+v", tt.url, o)
		}
		if tt.noClust != (u.clusterErr != nil) {
			t.Errorf("%s: cluster error %v, want one: %v", tt.url, u.clusterErr, tt.noClust)
		}
		if tt.addrs == nil {
			continue
		}
		if u.cluster == nil {
			t.Errorf("%s: no cluster options", tt.url)
			continue
		}
		if got := strings.Join(u.cluster.Addrs, ","); got != strings.Join(tt.addrs, ",") {
			t.Errorf("%s: cluster addrs %s, want %v", tt.url, got, tt.addrs)
		}
		if o := u.cluster; !o.ContextTimeoutEnabled || o.MaxRetries != -1 || o.PoolSize != clientPoolSize || o.DialTimeout != time.Second {
			t.Errorf("%s: cluster options not tuned: %+v", tt.url, o)
		}
	}
	u, err := parseRedisURL("rediss://u:pw@h1:7000?addr=h2:7001&max_redirects=5")
	if err != nil || u.cluster.MaxRedirects != 5 || u.cluster.TLSConfig == nil || u.cluster.Password != "pw" ||
		u.node.Password != "pw" || u.node.TLSConfig == nil {
		t.Fatalf("cluster URL options: %+v %v", u, err)
	}
}

func TestParseRedisURLErrorsHideThePassword(t *testing.T) {
	for _, raw := range []string{
		"http://u:s3cretpw@h:1",
		"redis://u:s3cretpw@h:1?cluster=maybe",
		"redis://u:s3cretpw@h:1?addr=h2:2&cluster=false",
		"redis://u:s3cretpw@h:1/3?cluster=true",
		"redis://u:s3cretpw@h:1?addr=h2:2&db=4",
		"redis://u:s3cretpw@h:1?addr=nohostport",
		"redis://u:s3cretpw@h:1?bogus=s3cretpw",
		"redis://u:s3cretpw@h:1?addr=h2:2&bogus=1",
		"redis://u:s3cretpw@h:port",
		"redis://u:s3cre%zztpw@h:1",
		"redis://u:s3cretpw@h:1/x",
	} {
		_, err := parseRedisURL(raw)
		if err == nil {
			t.Errorf("%s: accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cre") || !strings.HasPrefix(err.Error(), "ratelimit: parse redis url: ") {
			t.Errorf("%s: error %q", raw, err)
		}
		if _, err := ClientOptions(raw); err == nil {
			t.Errorf("ClientOptions(%s) accepted it", raw)
		}
	}
}

func TestClientOptionsOfAClusterURLNameItsFirstNode(t *testing.T) {
	o, err := ClientOptions("redis://u:pw@h1:7000?addr=h2:7001&addr=h3:7002")
	if err != nil || o.Addr != "h1:7000" || o.Password != "pw" || o.Username != "u" || !o.ContextTimeoutEnabled {
		t.Fatalf("ClientOptions: %+v %v", o, err)
	}
}

func TestNewClientExplicitModesDoNotAsk(t *testing.T) {
	ctx := context.Background()
	// Nothing listens on these ports; an explicit mode makes no connection at construction.
	c, err := NewClient(ctx, "redis://127.0.0.1:1?cluster=true", nil)
	if err != nil || !c.Cluster() {
		t.Fatalf("cluster=true: %v %v", c, err)
	}
	_ = c.Close()
	c, err = NewClient(ctx, "redis://127.0.0.1:1?addr=127.0.0.1:2", nil)
	if err != nil || !c.Cluster() {
		t.Fatalf("addr=: %v %v", c, err)
	}
	_ = c.Close()
	c, err = NewClient(ctx, "redis://127.0.0.1:1?cluster=false", nil)
	if err != nil || c.Cluster() {
		t.Fatalf("cluster=false: %v %v", c, err)
	}
	_ = c.Close()
}

func TestNewClientCannotAskStartsSingleAndWarns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // connection refused from now on
	core, logs := observer.New(zap.InfoLevel)
	start := time.Now()
	c, err := NewClient(context.Background(), "redis://u:s3cretpw@"+addr, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Cluster() {
		t.Fatal("a node that cannot be asked was taken for a cluster")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("NewClient took %v", d)
	}
	warns := logs.FilterMessageSnippet("cannot ask Redis whether it runs in cluster mode")
	if warns.Len() != 1 {
		t.Fatalf("logs: %v", logs.All())
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "s3cret") {
				t.Fatalf("log field %s carries the password: %q", f.Key, f.String)
			}
		}
	}
}

func TestNewClientDetectsASingleNode(t *testing.T) {
	url := testRedisURL()
	needRedis(t)
	c, err := NewClient(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Cluster() {
		t.Fatalf("%s was taken for a cluster", url)
	}
	lim := NewRedis(c, RedisOptions{Prefix: testPrefix(t, needRedis(t)), Policy: FailClosed, Timeout: time.Second})
	defer lim.Close()
	d, err := lim.Admit(context.Background(), Request{Subject: KeySubject("single"), Limits: Limits{Requests: perHour(1)}, Cost: oneReq})
	if err != nil || !d.Allowed {
		t.Fatalf("admit: %+v %v", d, err)
	}
}
