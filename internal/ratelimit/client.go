package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Client is the limiter's Redis connection built by NewClient from a URL: a go-redis single-node
// client or cluster client, tuned for the limiter (see ClientOptions). It implements
// redis.Scripter and pipelining, which is all the Redis limiter needs; pass it to NewRedis and
// Close it after the limiter.
//
// When NewClient could not tell whether the URL names a cluster node it starts on a single-node
// client, which switches the Client over to a cluster client the first time Redis answers MOVED
// or ASK, so a gateway that starts while Redis is unreachable still ends up using the cluster.
type Client struct {
	cur     atomic.Pointer[clientBox]
	mu      sync.Mutex
	clients []redis.UniversalClient // every client made, closed by Close
	closed  bool
	// toCluster, while not nil, builds the cluster client a MOVED switches to.
	toCluster func() (*redis.ClusterClient, error)
	addr      string
	log       *zap.Logger
	// stopWarm ends keepWarm, which closes warmDone.
	stopWarm context.CancelFunc
	warmDone chan struct{}
}

type clientBox struct {
	c       redis.UniversalClient
	cluster bool
}

var _ redis.Scripter = (*Client)(nil)

// clusterMode is what the URL says about Redis Cluster.
type clusterMode uint8

const (
	clusterAuto clusterMode = iota // one address: ask the node (INFO cluster)
	clusterYes                     // addr= parameters or cluster=true
	clusterNo                      // cluster=false
)

// redisURL is a parsed limiter URL.
type redisURL struct {
	mode clusterMode
	// node is the single-node options (clusterAuto, clusterNo), or those of the first node
	// (clusterYes).
	node *redis.Options
	// cluster is the cluster options (clusterYes; clusterAuto when the URL is also a valid
	// cluster URL, else clusterErr says why not).
	cluster    *redis.ClusterOptions
	clusterErr error
}

// parseRedisURL reads a limiter URL: go-redis's ParseURL for one node, its ParseClusterURL for a
// cluster (after taking out the cluster parameter). Errors never carry the URL's password.
func parseRedisURL(raw string) (*redisURL, error) {
	out, err := parseRedisURLErr(raw)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: parse redis url: %s", scrubPassword(err.Error(), raw))
	}
	return out, nil
}

func parseRedisURLErr(raw string) (*redisURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return nil, err
	}
	q := u.Query()
	out := &redisURL{}
	switch v := strings.ToLower(q.Get("cluster")); v {
	case "", "auto":
	case "true", "yes", "1":
		out.mode = clusterYes
	case "false", "no", "0":
		out.mode = clusterNo
	default:
		return nil, fmt.Errorf("cluster=%q: want true, false or auto", v)
	}
	q.Del("cluster")
	if q.Has("addr") {
		if out.mode == clusterNo {
			return nil, errors.New("addr= names more cluster nodes, but cluster=false")
		}
		out.mode = clusterYes
	}
	u.RawQuery = q.Encode()
	clean := u.String()

	if out.mode != clusterYes {
		if out.node, err = redis.ParseURL(clean); err != nil {
			return nil, err
		}
		tune(out.node)
		if out.mode == clusterAuto {
			out.cluster, out.clusterErr = parseCluster(u)
		}
		return out, nil
	}
	if out.cluster, err = parseCluster(u); err != nil {
		return nil, err
	}
	co := out.cluster
	out.node = &redis.Options{Addr: co.Addrs[0], Username: co.Username, Password: co.Password,
		TLSConfig: co.TLSConfig, Protocol: co.Protocol, ClientName: co.ClientName}
	tune(out.node)
	return out, nil
}

// parseCluster parses u (without the cluster parameter) as a cluster URL. A cluster has only
// database 0, so the URL may name no other.
func parseCluster(u *url.URL) (*redis.ClusterOptions, error) {
	c := *u
	if p := strings.Trim(c.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("database %q: a Redis Cluster has only database 0", p)
	}
	c.Path, c.RawPath = "", ""
	if q := c.Query(); q.Has("db") {
		if q.Get("db") != "0" {
			return nil, fmt.Errorf("db=%q: a Redis Cluster has only database 0", q.Get("db"))
		}
		q.Del("db")
		c.RawQuery = q.Encode()
	}
	co, err := redis.ParseClusterURL(c.String())
	if err != nil {
		return nil, err
	}
	tuneCluster(co)
	return co, nil
}

// Client tuning (see ClientOptions).
const (
	clientTimeout  = time.Second
	clientPoolSize = 256
	// clientWarmConns is how many connections per Redis node the Client keeps open and
	// initialized, ready for a burst (see keepWarm).
	clientWarmConns = 32
	// keepWarm looks at the pools every clientWarmEvery, touches the warm connections every
	// clientWarmRefresh even if none went missing (so none ages past go-redis's ConnMaxIdleTime
	// or a server's idle timeout), and waits clientWarmRetry after Redis did not answer.
	clientWarmEvery   = time.Second
	clientWarmRefresh = time.Minute
	clientWarmRetry   = 10 * time.Second
)

func tune(o *redis.Options) {
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
	o.DialTimeout = clientTimeout
	o.ReadTimeout = clientTimeout
	o.WriteTimeout = clientTimeout
	o.PoolTimeout = clientTimeout
	if o.PoolSize == 0 {
		// go-redis defaults to 10 connections per CPU. Every image request waits on one admit, and
		// requests arrive in bursts; with 20 connections a burst of thousands queues for the pool
		// past the limiter's timeout (measured: 4,744 requests in flight on 2 CPUs opened the
		// breaker). More connections let Redis, which is quick, see the whole burst at once.
		o.PoolSize = clientPoolSize
	}
}

// tuneCluster gives a cluster client tune's settings; PoolSize is per node. MaxRedirects stays
// go-redis's (3): following a MOVED is not a retry.
func tuneCluster(o *redis.ClusterOptions) {
	n := redis.Options{PoolSize: o.PoolSize}
	tune(&n)
	o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries = n.ContextTimeoutEnabled, n.MaxRetries, n.DialerRetries
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = n.DialTimeout, n.ReadTimeout, n.WriteTimeout, n.PoolTimeout
	o.PoolSize = n.PoolSize
}

// scrubPassword removes the password of raw's user information from msg.
func scrubPassword(msg, raw string) string {
	i := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if i < 0 || at < i {
		return msg
	}
	_, pw, ok := strings.Cut(raw[i+3:at], ":")
	if !ok || pw == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, pw, "[redacted]")
	if esc, err := url.PathUnescape(pw); err == nil && esc != pw {
		msg = strings.ReplaceAll(msg, esc, "[redacted]")
	}
	return msg
}

// ClientOptions parses a redis:// or rediss:// URL into single-node client options suited to the
// limiter: context deadlines bound socket waits, no command retries (the failure policy handles
// failures), and dial/read/write/pool timeouts of one second as an outer bound. It accepts every
// URL NewClient does; for a cluster URL (addr= or cluster=true) it returns the options of the
// first node. Use NewClient to build the limiter's client: it also handles Redis Cluster.
func ClientOptions(url string) (*redis.Options, error) {
	u, err := parseRedisURL(url)
	if err != nil {
		return nil, err
	}
	return u.node, nil
}

// keepWarm keeps clientWarmConns connections per node open and initialized until ctx ends. A
// connection go-redis opens for a command is opened and initialized on that command's clock: a
// dial and two or three round trips (HELLO, CLIENT SETINFO, the maintenance-notifications
// handshake) before the command is even written. In a burst the process is busy, each of those
// round trips waits for the scheduler, and the command passes the limiter's timeout: in a traced
// run of 4,744 requests in flight on 2 CPUs, 16 of the 21 admit calls that had to open a
// connection failed, and 2 of the 112 that found one open. go-redis then drops the connection
// (a timed-out reply may still come), so the next burst opened connections again, and one failed
// batch opened the breaker for a whole wave. go-redis's MinIdleConns does not help: it dials in
// the background, but the initialization still happens on the first command's clock. So the
// Client opens the connections itself, off the request path, with PINGs: at once, whenever a
// pool holds fewer than clientWarmConns, and every clientWarmRefresh.
func (c *Client) keepWarm(ctx context.Context) {
	defer close(c.warmDone)
	t := time.NewTicker(clientWarmEvery)
	defer t.Stop()
	var next, refresh time.Time
	for {
		if now := time.Now(); !now.Before(next) {
			force := !now.Before(refresh)
			switch ok := c.warm(ctx, force); {
			case !ok:
				next = now.Add(clientWarmRetry)
			case force:
				refresh = now.Add(clientWarmRefresh)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var errNotWarm = errors.New("ratelimit: warming Redis connections failed")

// warm brings the pool of every node (the node, or a cluster's masters) up to clientWarmConns
// connections (with force, touches that many even if the pool holds them). It reports false if
// Redis did not answer.
func (c *Client) warm(ctx context.Context, force bool) bool {
	switch rc := c.Redis().(type) {
	case *redis.Client:
		return warmPool(ctx, rc, force)
	case *redis.ClusterClient:
		return rc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if !warmPool(ctx, n, force) {
				return errNotWarm
			}
			return nil
		}) == nil
	}
	return true
}

// warmPool sends one PING (so a Redis that is down costs one dial), then one on each of
// clientWarmConns (at most the pool size) connections held at once: each takes an idle
// connection or opens one and keeps it until all have pinged, so the pool ends up with at least
// that many. (Plain concurrent PINGs did not: on a busy machine a PING that had finished handed
// its connection to the next, and the pool grew a few connections a second.)
func warmPool(ctx context.Context, rc *redis.Client, force bool) bool {
	n := min(clientWarmConns, rc.Options().PoolSize)
	if !force && int(rc.PoolStats().TotalConns) >= n {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	if rc.Ping(ctx).Err() != nil {
		return false
	}
	held := make([]*redis.Conn, n)
	for i := range held {
		held[i] = rc.Conn() // takes a connection from the pool at its first command, until Close
	}
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, cn := range held {
		wg.Go(func() {
			if cn.Ping(ctx).Err() != nil {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	for _, cn := range held {
		_ = cn.Close() // back to the pool, idle and initialized
	}
	return !failed.Load()
}

// detectTimeout bounds NewClient's question to Redis.
const detectTimeout = 2 * time.Second

// NewClient returns the limiter's Redis client for url, connected to one node or to a Redis
// Cluster:
//
//	redis://[user:password@]host:6379[/db]      one Redis, or any node of a cluster (detected)
//	rediss://…                                  the same over TLS
//	redis://h1:7000?addr=h2:7000&addr=h3:7000   a cluster, given several seed nodes (go-redis's
//	                                            cluster URL; see redis.ParseClusterURL)
//	…?cluster=true                              a cluster, without asking
//	…?cluster=false                             one node, without asking
//
// With one address and no cluster parameter NewClient asks the node (INFO cluster, bounded by
// ctx and two seconds) and builds a cluster client, seeded with that address, if the node runs in
// cluster mode. If it cannot ask, it logs that and starts on a single-node client that switches to
// a cluster client on the first MOVED reply. A cluster has only database 0. The other query
// parameters are go-redis's (ParseURL's for one node, ParseClusterURL's for a cluster); the
// limiter's timeouts and retries override the URL's (see ClientOptions). Errors and logs never
// carry the password.
//
// From NewClient until Close a background goroutine keeps clientWarmConns (32) connections per
// node open and initialized, so a burst of calls does not open connections on the limiter's
// short timeout (see keepWarm).
func NewClient(ctx context.Context, url string, log *zap.Logger) (*Client, error) {
	u, err := parseRedisURL(url)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Client{addr: u.node.Addr, log: log}
	defer c.startWarm()
	switch u.mode {
	case clusterYes:
		c.use(redis.NewClusterClient(u.cluster), true)
		return c, nil
	case clusterNo:
		c.use(redis.NewClient(u.node), false)
		return c, nil
	}
	isCluster, derr := detectCluster(ctx, u.node)
	if derr == nil && isCluster {
		if u.clusterErr != nil {
			return nil, fmt.Errorf("ratelimit: redis at %s is a cluster node, but the URL is not a cluster URL: %s",
				u.node.Addr, scrubPassword(u.clusterErr.Error(), url))
		}
		log.Info("ratelimit: Redis runs in cluster mode; using the cluster client", zap.String("addr", u.node.Addr))
		c.use(redis.NewClusterClient(u.cluster), true)
		return c, nil
	}
	single := redis.NewClient(u.node)
	c.toCluster = func() (*redis.ClusterClient, error) {
		if u.clusterErr != nil {
			return nil, errors.New(scrubPassword(u.clusterErr.Error(), url))
		}
		return redis.NewClusterClient(u.cluster), nil
	}
	single.AddHook(movedHook{c})
	if derr != nil {
		log.Warn("ratelimit: cannot ask Redis whether it runs in cluster mode; starting with a single-node "+
			"client, which switches to the cluster client if Redis answers MOVED (cluster=true or cluster=false "+
			"in the URL skips the question)", zap.String("addr", u.node.Addr),
			zap.String("error", scrubPassword(derr.Error(), url)))
	}
	c.use(single, false)
	return c, nil
}

// detectCluster asks the node of o whether it runs in cluster mode.
func detectCluster(ctx context.Context, o *redis.Options) (bool, error) {
	po := *o
	po.DB = 0 // a cluster node refuses SELECT
	po.PoolSize = 1
	c := redis.NewClient(&po)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_enabled:"); ok {
			return v == "1", nil
		}
	}
	return false, nil
}

// startWarm starts keepWarm, unless NewClient failed or the Client is closed.
func (c *Client) startWarm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.clients) == 0 || c.warmDone != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopWarm, c.warmDone = cancel, make(chan struct{})
	go c.keepWarm(ctx)
}

func (c *Client) use(rc redis.UniversalClient, cluster bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = rc.Close()
		return
	}
	c.clients = append(c.clients, rc)
	c.cur.Store(&clientBox{c: rc, cluster: cluster})
}

// switchToCluster replaces the single-node client by a cluster client, once.
func (c *Client) switchToCluster() {
	c.mu.Lock()
	build := c.toCluster
	c.toCluster = nil
	c.mu.Unlock()
	if build == nil {
		return
	}
	cc, err := build()
	if err != nil {
		c.log.Error("ratelimit: Redis answered MOVED (it is a cluster node), but the URL is not a cluster URL; "+
			"limits fall back while this lasts", zap.String("addr", c.addr), zap.Error(err))
		return
	}
	c.log.Warn("ratelimit: Redis answered MOVED: it runs in cluster mode; switching to the cluster client",
		zap.String("addr", c.addr))
	c.use(cc, true)
}

// movedHook switches its Client to the cluster client when a reply is a cluster redirection.
type movedHook struct{ c *Client }

func (h movedHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h movedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isRedirect(err) || isRedirect(cmd.Err()) { // go-redis sets cmd's error after the hooks
			h.c.switchToCluster()
		}
		return err
	}
}

func (h movedHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if isRedirect(cmd.Err()) || isRedirect(err) {
				h.c.switchToCluster()
				break
			}
		}
		return err
	}
}

func isRedirect(err error) bool {
	return err != nil && (redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK"))
}

// Redis returns the go-redis client in use: a *redis.Client or a *redis.ClusterClient.
func (c *Client) Redis() redis.UniversalClient { return c.cur.Load().c }

// Cluster reports whether the client in use is a cluster client.
func (c *Client) Cluster() bool { return c.cur.Load().cluster }

// Close stops keeping connections warm and closes every go-redis client the Client made.
func (c *Client) Close() error {
	c.mu.Lock()
	clients := c.clients
	c.clients = nil
	c.closed = true
	c.toCluster = nil
	stop, done := c.stopWarm, c.warmDone
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done // a warming pass in progress ends within its PINGs' timeout
	}
	var errs []error
	for _, rc := range clients {
		errs = append(errs, rc.Close())
	}
	return errors.Join(errs...)
}

// Eval implements redis.Scripter.
func (c *Client) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return c.Redis().Eval(ctx, script, keys, args...)
}

// EvalSha implements redis.Scripter.
func (c *Client) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return c.Redis().EvalSha(ctx, sha1, keys, args...)
}

// EvalRO implements redis.Scripter.
func (c *Client) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return c.Redis().EvalRO(ctx, script, keys, args...)
}

// EvalShaRO implements redis.Scripter.
func (c *Client) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return c.Redis().EvalShaRO(ctx, sha1, keys, args...)
}

// ScriptExists implements redis.Scripter. On a cluster it asks every master.
func (c *Client) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return c.Redis().ScriptExists(ctx, hashes...)
}

// ScriptLoad implements redis.Scripter. On a cluster it loads the script on every master.
func (c *Client) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return c.Redis().ScriptLoad(ctx, script)
}

// Pipeline returns a pipeline of the client in use; on a cluster it sends each command to the
// node of its key's slot.
func (c *Client) Pipeline() redis.Pipeliner { return c.Redis().Pipeline() }
