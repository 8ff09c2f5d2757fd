package storetest

import (
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/store"
)

// testChannelSwitches: no switch at first; a channel switched off and on keeps one row with its
// latest state and time; switches come back ordered by channel name; they need no key.
func testChannelSwitches(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.ChannelSwitches(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("ChannelSwitches on a fresh store = %v, %v; want none", got, err)
	}
	steps := []struct {
		channel string
		enabled bool
		at      time.Time
	}{
		{"sf-main", false, base},
		{"ark", false, base.Add(time.Second)},
		{"sf-main", true, base.Add(2 * time.Second)},
		{"sf-main", false, base.Add(3 * time.Second)},
		{"ark", true, base.Add(4 * time.Second)},
	}
	for _, st := range steps {
		if err := s.SetChannelEnabled(ctx, st.channel, st.enabled, st.at); err != nil {
			t.Fatalf("SetChannelEnabled(%s, %v): %v", st.channel, st.enabled, err)
		}
	}
	got, err = s.ChannelSwitches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ChannelSwitch{
		{Channel: "ark", Enabled: true, UpdatedAt: base.Add(4 * time.Second)},
		{Channel: "sf-main", Enabled: false, UpdatedAt: base.Add(3 * time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("ChannelSwitches = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Channel != want[i].Channel || got[i].Enabled != want[i].Enabled || !got[i].UpdatedAt.Equal(want[i].UpdatedAt) ||
			got[i].UpdatedAt.Location() != time.UTC {
			t.Errorf("switch %d = %+v, want %+v (UTC)", i, got[i], want[i])
		}
	}
}
