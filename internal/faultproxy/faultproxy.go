// Package faultproxy is a TCP proxy for tests that can refuse, reset or blackhole the
// connections between a client under test (the gateway) and a real server behind it
// (Postgres, Redis, a fake upstream).
//
// Start a proxy in front of the server and point the client at [Proxy.Addr] instead:
//
//	p, err := faultproxy.Start("127.0.0.1:5432")
//	if err != nil { t.Fatal(err) }
//	defer p.Close()
//	dsn := "postgres://postgres@" + p.Addr() + "/test?sslmode=disable"
//	...
//	p.SetMode(faultproxy.Blackhole) // partition: nothing moves, nothing closes
//	...
//	p.SetMode(faultproxy.Pass)      // heal
//
// The modes:
//
//   - [Pass]: bytes are forwarded both ways (the default).
//   - [Refuse]: the proxy closes its listening socket, so new connection attempts fail with
//     "connection refused" (ECONNREFUSED, as from a server that is down). The port is bound
//     again, on the same address, when the mode leaves Refuse. It is chosen below the
//     kernel's ephemeral range, so that while it is free no outgoing connection (nor a
//     listener on port 0) of a busy test run can be given it. Connections that already exist
//     are not touched; call [Proxy.CutExisting] as well to simulate a server that went down.
//   - [Reset]: every existing connection is reset (SO_LINGER 0 then close, so both peers see
//     "connection reset by peer"), and every new connection is accepted and reset at once.
//   - [Blackhole]: a network partition. Existing and new connections stay open, but no byte
//     is forwarded in either direction; new connections are accepted by the proxy but not
//     dialled to the target until the partition heals. Clients see reads and connects that
//     never finish (only their own deadlines end them).
//
// When a Blackhole ends (any other mode is set) the connections it held resume forwarding,
// as TCP connections do when a partition heals: bytes read during the partition are
// delivered then. A connection accepted during the partition dials the target when it heals.
// Call CutExisting first if the test wants them gone instead.
//
// When either side of a proxied connection closes or fails, the proxy closes both sides
// (there is no half-close). All methods are safe for concurrent use. Close stops the
// listener, closes every connection and waits for every goroutine the proxy started.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is what the proxy does to connections.
type Mode int

// The modes; see the package documentation.
const (
	Pass Mode = iota
	Refuse
	Reset
	Blackhole
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Refuse:
		return "refuse"
	case Reset:
		return "reset"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DialTimeout bounds the proxy's connect to its target.
const DialTimeout = 5 * time.Second

// Proxy is a TCP proxy with switchable faults. Create it with Start.
type Proxy struct {
	target string
	addr   string // fixed for the proxy's life, also across Refuse

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	mode     Mode
	ln       net.Listener // nil while refusing and after Close
	closed   bool
	conns    map[*conn]struct{}
	unblock  chan struct{} // closed when a Blackhole ends; replaced when one begins
	accepted int64
}

// Start listens on a fresh loopback port and forwards each connection to target
// ("host:port") in Pass mode.
func Start(target string) (*Proxy, error) {
	ln, err := listenOutsideEphemeral()
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target:  target,
		addr:    ln.Addr().String(),
		ctx:     ctx,
		cancel:  cancel,
		ln:      ln,
		conns:   make(map[*conn]struct{}),
		unblock: make(chan struct{}),
	}
	close(p.unblock) // not blackholed
	p.serve(ln)
	return p, nil
}

// Addr returns the proxy's listening address ("127.0.0.1:port"). It does not change when
// the mode does.
func (p *Proxy) Addr() string { return p.addr }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Conns returns the number of live client connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Accepted returns the number of client connections accepted since Start.
func (p *Proxy) Accepted() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// SetMode switches the mode. Leaving Refuse binds the same address again; the only error
// is failing to do that (another process took the port), after which the proxy keeps
// refusing. Setting a mode after Close is an error.
func (p *Proxy) SetMode(m Mode) error {
	if m < Pass || m > Blackhole {
		return fmt.Errorf("faultproxy: unknown mode %d", int(m))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faultproxy: SetMode after Close")
	}
	old := p.mode

	// Listener: closed only while refusing.
	if m == Refuse && p.ln != nil {
		_ = p.ln.Close() // pending connections in the backlog are reset by the kernel
		p.ln = nil
	}
	if m != Refuse && p.ln == nil {
		ln, err := listenAgain(p.addr)
		if err != nil {
			p.mode = Refuse
			return err
		}
		p.ln = ln
		p.serve(ln)
	}

	// Blackhole gate: a fresh open channel while partitioned, closed otherwise.
	if m == Blackhole && old != Blackhole {
		p.unblock = make(chan struct{})
	}
	if m != Blackhole && old == Blackhole {
		close(p.unblock)
	}

	if m == Reset {
		p.resetAllLocked()
	}
	p.mode = m
	return nil
}

// CutExisting resets every live connection (both sides see a reset) without changing the
// mode; new connections are treated as the mode says.
func (p *Proxy) CutExisting() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resetAllLocked()
}

// Close stops listening, closes every connection and waits until all of the proxy's
// goroutines have returned. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.cancel()
		if p.ln != nil {
			_ = p.ln.Close()
			p.ln = nil
		}
		p.resetAllLocked()
		if p.mode == Blackhole {
			close(p.unblock) // nobody waits on it after the conns are closed, but be tidy
			p.mode = Pass
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// listenOutsideEphemeral listens on a loopback port below the kernel's ephemeral range (Linux:
// /proc/sys/net/ipv4/ip_local_port_range), or on any free port where that range is unknown.
// A port from the ephemeral range, left free while the proxy refuses, can be taken by any
// connection the machine opens meanwhile, and the proxy then cannot bind it again.
func listenOutsideEphemeral() (net.Listener, error) {
	if low := ephemeralLow(); low > 10000+1000 {
		for range 100 {
			port := 10000 + rand.IntN(low-10000)
			if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				return ln, nil
			}
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// ephemeralLow is the first port of the kernel's ephemeral range, or 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return low
}

// listenAgain binds addr again after a Refuse, retrying briefly in case the old socket
// is still being torn down.
func listenAgain(addr string) (net.Listener, error) {
	var err error
	for i := 0; i < 20; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("faultproxy: listen again on %s: %w", addr, err)
}

func (p *Proxy) resetAllLocked() {
	for c := range p.conns {
		c.reset()
		delete(p.conns, c)
	}
}

// serve runs the accept loop of ln until ln is closed. Called with p.mu held or before
// the proxy is shared.
func (p *Proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return // closed (Refuse or Close)
			}
			p.admit(nc)
		}
	}()
}

// admit decides what to do with a new client connection.
func (p *Proxy) admit(nc net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted++
	if p.closed || p.mode == Reset || p.mode == Refuse {
		// Refuse can only be seen here for a connection accepted just before the switch.
		resetConn(nc)
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	c := &conn{p: p, client: nc, ctx: ctx, cancel: cancel}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	go c.run()
}

// gate blocks while the proxy is blackholed. It returns false when the connection is
// being torn down.
func (p *Proxy) gate(ctx context.Context) bool {
	for {
		p.mu.Lock()
		ch := p.unblock
		p.mu.Unlock()
		select {
		case <-ch:
			// The partition ended; check again in case a new one began meanwhile.
			p.mu.Lock()
			open := p.unblock == ch
			p.mu.Unlock()
			if open {
				return ctx.Err() == nil
			}
		case <-ctx.Done():
			return false
		}
	}
}

func (p *Proxy) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// conn is one proxied connection.
type conn struct {
	p      *Proxy
	client net.Conn
	ctx    context.Context // cancelled when the connection is torn down
	cancel context.CancelFunc

	mu       sync.Mutex
	upstream net.Conn
	done     bool
}

func (c *conn) run() {
	defer c.p.wg.Done()
	defer c.p.forget(c)
	defer c.close()

	// A connection accepted during a partition dials only when it heals.
	if !c.p.gate(c.ctx) {
		return
	}
	d := net.Dialer{Timeout: DialTimeout}
	up, err := d.DialContext(c.ctx, "tcp", c.p.target)
	if err != nil {
		c.reset() // the client sees a reset, as if the server were down
		return
	}
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		resetConn(up)
		return
	}
	c.upstream = up
	c.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pump(up, c.client) }()
	go func() { defer wg.Done(); c.pump(c.client, up) }()
	wg.Wait()
}

// pump copies src to dst, holding bytes back while the proxy is blackholed, and tears the
// connection down when either side ends.
func (c *conn) pump(dst, src net.Conn) {
	defer c.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !c.p.gate(c.ctx) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// A reset or error on one side becomes a reset on the other.
				c.reset()
			}
			return
		}
	}
}

// close closes both sides normally (FIN), once.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	c.cancel()
	_ = c.client.Close()
	if c.upstream != nil {
		_ = c.upstream.Close()
	}
}

// reset closes both sides with SO_LINGER 0 so that both peers see a reset, once.
func (c *conn) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	c.cancel()
	resetConn(c.client)
	if c.upstream != nil {
		resetConn(c.upstream)
	}
}

func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
