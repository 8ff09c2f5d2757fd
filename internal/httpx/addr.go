package httpx

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// blockedPrefixes are the ranges the dialer refuses. IPv4-mapped IPv6 addresses are unmapped
// before the check, and NAT64 / 6to4 addresses are checked by the IPv4 address they embed.
var blockedPrefixes = mustPrefixes(
	// IPv4.
	"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches the local host on Linux
	"10.0.0.0/8",      // RFC 1918 private
	"100.64.0.0/10",   // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
	"172.16.0.0/12",   // RFC 1918 private
	"192.0.0.0/24",    // IETF protocol assignments (incl. 192.0.0.192 Oracle metadata)
	"192.0.2.0/24",    // TEST-NET-1
	"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
	"192.168.0.0/16",  // RFC 1918 private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
	// IPv6.
	"::/8",           // unspecified, loopback, IPv4-compatible and other reserved forms (NAT64 is checked first)
	"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	"100::/64",       // discard-only
	"2001::/23",      // IETF protocol assignments, incl. Teredo 2001::/32
	"2001:db8::/32",  // documentation
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // SRv6 SIDs
	"fc00::/7",       // unique local (incl. fd00:ec2::254, the AWS metadata endpoint)
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

var (
	nat64Prefix    = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix
	sixToFourPrefx = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056)
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// Blocked reports whether the default policy refuses to connect to ip: it is loopback, private,
// link-local, CGNAT, multicast, unspecified, reserved or a documentation address, or an IPv6
// address embedding such an IPv4 address (IPv4-mapped, NAT64, 6to4). An invalid address is blocked.
func Blocked(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return true
	}
	if ip.Is6() {
		// These embed an IPv4 address that a translator or relay would connect to.
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			return Blocked(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFourPrefx.Contains(ip):
			return Blocked(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// allowList holds the parsed Options.AllowHosts.
type allowList struct {
	names     map[string]bool // lower-case host names, any port
	hostPorts map[string]bool // lower-case "name:port"
	prefixes  []netip.Prefix  // single IPs and CIDRs, any port
	addrPorts map[netip.AddrPort]bool
}

func (a *allowList) empty() bool {
	return a == nil || len(a.names)+len(a.hostPorts)+len(a.prefixes)+len(a.addrPorts) == 0
}

// parseAllowList parses AllowHosts entries, reporting every bad entry at once.
func parseAllowList(entries []string) (*allowList, error) {
	a := &allowList{names: map[string]bool{}, hostPorts: map[string]bool{}, addrPorts: map[netip.AddrPort]bool{}}
	var problems []string
	for _, raw := range entries {
		if err := a.add(raw); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("httpx: AllowHosts: %s", strings.Join(problems, "; "))
	}
	return a, nil
}

func (a *allowList) add(raw string) error {
	e := strings.TrimSpace(raw)
	switch {
	case e == "":
		return fmt.Errorf("empty entry")
	case strings.Contains(e, "://"):
		return fmt.Errorf("entry %q is a URL; give a host, host:port, IP, ip:port or CIDR", raw)
	case strings.Contains(e, "/"):
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("entry %q: bad CIDR: %w", raw, err)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")); err == nil {
		ip = ip.WithZone("").Unmap()
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	if ap, err := netip.ParseAddrPort(e); err == nil {
		a.addrPorts[netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port())] = true
		return nil
	}
	host, port := e, ""
	if h, p, err := net.SplitHostPort(e); err == nil {
		host, port = h, p
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("entry %q: bad port %q", raw, port)
		}
	}
	if !validHostName(host) {
		return fmt.Errorf("entry %q: not a host name, IP address or CIDR", raw)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if port == "" {
		a.names[host] = true
	} else {
		a.hostPorts[host+":"+port] = true
	}
	return nil
}

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// allowsName reports whether the dial target "host:port", before resolution, is allowed by name.
func (a *allowList) allowsName(host, port string) bool {
	if a.empty() {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return a.names[host] || a.hostPorts[host+":"+port]
}

// allowsAddr reports whether a resolved address is allowed.
func (a *allowList) allowsAddr(ap netip.AddrPort) bool {
	if a.empty() {
		return false
	}
	ip := ap.Addr().WithZone("").Unmap()
	if a.addrPorts[netip.AddrPortFrom(ip, ap.Port())] {
		return true
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// control returns a net.Dialer.Control function that refuses blocked addresses not in allow.
// It runs after the socket is created and before connect(2), on the resolved address of every
// connection attempt.
func control(allow *allowList) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("%w: network %q", ErrBlockedAddress, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse %q: %v", ErrBlockedAddress, address, err)
		}
		if allow.allowsAddr(ap) || !Blocked(ap.Addr()) {
			return nil
		}
		return fmt.Errorf("%w: %s is a private, loopback, link-local or reserved address", ErrBlockedAddress, ap.Addr())
	}
}
