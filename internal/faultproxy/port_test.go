package faultproxy

import (
	"net"
	"strconv"
	"testing"
)

// TestPortOutsideEphemeralRange: the proxy's port cannot be handed to another socket while it
// refuses (a busy test run opens connections by the thousand, each on an ephemeral port).
func TestPortOutsideEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low == 0 {
		t.Skip("the kernel's ephemeral port range is unknown here")
	}
	for range 10 {
		p, err := Start("127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(p.Addr())
		p.Close()
		if n, _ := strconv.Atoi(port); n >= low {
			t.Fatalf("port %d is in the ephemeral range (from %d)", n, low)
		}
	}
}
