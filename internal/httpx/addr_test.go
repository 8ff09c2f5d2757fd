package httpx

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestBlocked(t *testing.T) {
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3",
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255",
		"192.0.0.192", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9",
		"224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.1.2.3",
		"::ffff:0.0.0.0", "::127.0.0.1", "::ffff:0:7f00:1", // IPv4-compatible and -translated
		"fc00::1", "fd00::1", "fd00:ec2::254", "fe80::1", "fe80::1%eth0", "fec0::1",
		"ff02::1", "ff05::1:3", "2001:db8::1", "2001::1", "100::1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", // NAT64 of 127.0.0.1 / metadata
		"2002:7f00:1::", "2002:a9fe:a9fe::1", // 6to4 of 127.0.0.1 / metadata
	}
	for _, s := range blocked {
		if !Blocked(netip.MustParseAddr(s)) {
			t.Errorf("Blocked(%s) = false, want true", s)
		}
	}
	public := []string{
		"1.1.1.1", "8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0",
		"172.15.255.255", "172.32.0.0", "192.169.0.1", "169.253.255.255",
		"::ffff:8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
		"64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range public {
		if Blocked(netip.MustParseAddr(s)) {
			t.Errorf("Blocked(%s) = true, want false", s)
		}
	}
	if !Blocked(netip.Addr{}) {
		t.Error("the zero Addr must be blocked")
	}
}

func TestParseAllowList(t *testing.T) {
	a, err := parseAllowList([]string{"LocalHost", "sim.internal:8089", "127.0.0.2", "[::1]", "10.20.0.0/16", "127.0.0.1:9000", "[::1]:9001", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	names := []struct {
		host, port string
		want       bool
	}{
		{"localhost", "80", true}, {"LOCALHOST.", "1", true}, {"sim.internal", "8089", true},
		{"sim.internal", "8090", false}, {"example.com", "80", false},
	}
	for _, c := range names {
		if got := a.allowsName(c.host, c.port); got != c.want {
			t.Errorf("allowsName(%s, %s) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
	addrs := []struct {
		ap   string
		want bool
	}{
		{"127.0.0.2:1", true}, {"[::ffff:127.0.0.2]:1", true}, {"[::1]:5", true}, {"10.20.3.4:443", true},
		{"10.21.0.1:443", false}, {"127.0.0.1:9000", true}, {"127.0.0.1:9001", false},
		{"[::1]:9001", true}, {"[fd12::1]:80", true}, {"[fe80::1]:80", false},
	}
	for _, c := range addrs {
		if got := a.allowsAddr(netip.MustParseAddrPort(c.ap)); got != c.want {
			t.Errorf("allowsAddr(%s) = %v, want %v", c.ap, got, c.want)
		}
	}

	_, err = parseAllowList([]string{"", "http://x", "10.0.0.0/33", "host:0", "bad host", "1.2.3.4:99999"})
	if err == nil {
		t.Fatal("bad entries accepted")
	}
	for _, want := range []string{"empty entry", `"http://x" is a URL`, `"10.0.0.0/33"`, `"host:0"`, `"bad host"`, `"1.2.3.4:99999"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestControl(t *testing.T) {
	allow, _ := parseAllowList([]string{"127.0.0.2"})
	c := control(allow)
	for _, tc := range []struct {
		network, addr string
		ok            bool
	}{
		{"tcp4", "127.0.0.1:80", false},
		{"tcp4", "127.0.0.2:80", true},
		{"tcp6", "[::ffff:127.0.0.2]:80", true},
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[fd00:ec2::254]:80", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp", "garbage", false},
	} {
		err := c(tc.network, tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("control(%s, %s) = %v, want ok=%v", tc.network, tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("control(%s, %s) = %v, not ErrBlockedAddress", tc.network, tc.addr, err)
		}
	}
}

func TestValidateAndNewPanics(t *testing.T) {
	if err := (Options{AllowHosts: []string{"ok.example", "::1", "10.0.0.0/8"}}).Validate(); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
	bad := Options{AllowHosts: []string{"http://127.0.0.1"}, MaxIdleConnsPerHost: -1}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "is a URL") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("Validate() = %v, want both problems", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New did not panic on invalid options")
		}
	}()
	New(bad)
}
