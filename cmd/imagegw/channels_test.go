package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/router"
)

// TestChannelsCLI: disable and enable store the switch (a gateway sharing the store follows),
// list shows it, and --gateway shows a running gateway's live state; mistakes are usage errors.
func TestChannelsCLI(t *testing.T) {
	dir := isolate(t)
	t.Setenv("IMAGEGW_ADMIN_TOKEN", gatewaytest.AdminToken)

	out := mustRun(t, "channels", "list")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "sandbox") || !strings.Contains(out, "true") {
		t.Fatalf("channels list:\n%s", out)
	}
	out = mustRun(t, "channels", "disable", "sandbox")
	if !strings.Contains(out, "Disabled channel sandbox") || !strings.Contains(out, "2s") {
		t.Fatalf("channels disable:\n%s", out)
	}
	var infos []ChannelInfo
	if err := json.Unmarshal([]byte(mustRun(t, "channels", "list", "--json")), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Name != "sandbox" || infos[0].Enabled || infos[0].Weight != 1 || infos[0].SwitchedAt == nil {
		t.Fatalf("channels list --json: %+v", infos)
	}

	// A gateway on the same store starts with the channel disabled; the CLI sees it live.
	g := gatewaytest.Start(t, gatewaytest.Options{Env: map[string]string{"IMAGEGW_DATA_DIR": dir}})
	var live []router.ChannelView
	if err := json.Unmarshal([]byte(mustRun(t, "channels", "list", "--gateway", g.URL, "--json")), &live); err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].Enabled || len(live[0].Models) == 0 || live[0].Models[0].State != router.Disabled {
		t.Fatalf("live: %+v", live)
	}
	var in ChannelInfo
	if err := json.Unmarshal([]byte(mustRun(t, "channels", "enable", "sandbox", "--json")), &in); err != nil || !in.Enabled {
		t.Fatalf("channels enable --json: %+v %v", in, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.App.Router.IsDisabled("sandbox") {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not follow the CLI's switch within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := mustRun(t, "channels", "list", "--gateway", g.URL); !strings.Contains(out, "sandbox-image") || !strings.Contains(out, "closed") {
		t.Fatalf("channels list --gateway:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"channels"}, "channels: missing subcommand"},
		{[]string{"channels", "drain", "x"}, `channels: unknown subcommand "drain"`},
		{[]string{"channels", "disable"}, "channels disable: want exactly one channel NAME"},
		{[]string{"channels", "disable", "nope"}, `channels disable: no configured channel "nope" (configured: sandbox)`},
		{[]string{"channels", "list", "extra"}, `channels list: unexpected argument "extra"`},
	} {
		_, stderr, code := cli(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("imagegw %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	for _, args := range [][]string{{"channels", "--help"}, {"channels", "disable", "--help"}, {"channels", "list", "--help"}} {
		stdout, _, code := cli(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage: imagegw channels") {
			t.Errorf("imagegw %v: exit %d:\n%s", args, code, stdout)
		}
	}
}
