package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestJournalFsync: billing.journal_fsync is true (the default), false or a flush interval, from
// the file or IMAGEGW_JOURNAL_FSYNC, and prints back as it reads.
func TestJournalFsync(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Billing.JournalFsync != (FsyncPolicy{}) {
		t.Fatalf("default journal_fsync = %+v; want fsync before each response", c.Billing.JournalFsync)
	}
	for _, tc := range []struct {
		in   string
		want FsyncPolicy
	}{
		{"true", FsyncPolicy{}},
		{"false", FsyncPolicy{Off: true}},
		{"10ms", FsyncPolicy{After: 10 * time.Millisecond}},
		{"1s", FsyncPolicy{After: time.Second}},
	} {
		c, err := Load(write(t, "billing:\n  journal_fsync: "+tc.in+"\n"), env(nil))
		if err != nil {
			t.Fatalf("journal_fsync: %s: %v", tc.in, err)
		}
		if c.Billing.JournalFsync != tc.want {
			t.Errorf("journal_fsync: %s read as %+v; want %+v", tc.in, c.Billing.JournalFsync, tc.want)
		}
		if got := c.Billing.JournalFsync.String(); got != tc.in {
			t.Errorf("journal_fsync: %s prints as %q", tc.in, got)
		}
		if !strings.Contains(c.Redacted(), "journal_fsync: "+tc.in+"\n") {
			t.Errorf("journal_fsync: %s is not in the printed config:\n%s", tc.in, c.Redacted())
		}
		c, err = Load("", env(map[string]string{"IMAGEGW_JOURNAL_FSYNC": tc.in}))
		if err != nil || c.Billing.JournalFsync != tc.want {
			t.Errorf("IMAGEGW_JOURNAL_FSYNC=%s: %+v, %v; want %+v", tc.in, c.Billing.JournalFsync, err, tc.want)
		}
	}
	for in, off := range map[string]bool{"on": false, "yes": false, "y": false, "off": true, "no": true, "N": true, "True": false, "0": true} {
		c, err := Load(write(t, "billing:\n  journal_fsync: "+in+"\n"), env(nil))
		if err != nil || c.Billing.JournalFsync != (FsyncPolicy{Off: off}) {
			t.Errorf("journal_fsync: %s (read when it was a bool): %+v, %v; want Off %v", in, c.Billing.JournalFsync, err, off)
		}
	}
	for in, want := range map[string]string{
		"sometimes": `"sometimes" is not true, false or a duration`,
		"500us":     "500µs is out of range: a flush interval is 1ms to 1s",
		"2s":        "2s is out of range",
		"-10ms":     "-10ms is out of range",
		"[1]":       "billing.journal_fsync",
	} {
		_, err := Load(write(t, "billing:\n  journal_fsync: "+in+"\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("journal_fsync: %s: error %v; want one saying %q", in, err, want)
		}
	}
	var p FsyncPolicy
	if err := yaml.Unmarshal([]byte("{}"), &p); err == nil {
		t.Error("a mapping read as a journal_fsync")
	}
}
