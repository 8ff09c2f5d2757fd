package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreTimeoutAndKeyStaleFor(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Timeout.D() != 2*time.Second || c.Limits.KeyStaleFor.D() != 10*time.Minute {
		t.Fatalf("defaults: store.timeout %v, limits.key_stale_for %v", c.Store.Timeout.D(), c.Limits.KeyStaleFor.D())
	}

	c, err = Load(write(t, "store: {timeout: 500ms}\nlimits: {key_stale_for: 0s}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Timeout.D() != 500*time.Millisecond || c.Limits.KeyStaleFor != 0 {
		t.Fatalf("file not applied: store.timeout %v, limits.key_stale_for %v", c.Store.Timeout.D(), c.Limits.KeyStaleFor.D())
	}

	c, err = Load(write(t, "store: {timeout: 500ms}\n"), env(map[string]string{"IMAGEGW_STORE_TIMEOUT": "3s", "IMAGEGW_KEY_STALE_FOR": "1h"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Timeout.D() != 3*time.Second || c.Limits.KeyStaleFor.D() != time.Hour {
		t.Fatalf("env not applied: store.timeout %v, limits.key_stale_for %v", c.Store.Timeout.D(), c.Limits.KeyStaleFor.D())
	}

	_, err = Load(write(t, "store: {timeout: 0s}\nlimits: {key_stale_for: -1s}\n"), env(nil))
	for _, want := range []string{"store.timeout", "limits.key_stale_for"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	if _, err = Load("", env(map[string]string{"IMAGEGW_STORE_TIMEOUT": "soon"})); err == nil || !strings.Contains(err.Error(), "IMAGEGW_STORE_TIMEOUT") {
		t.Errorf("a bad IMAGEGW_STORE_TIMEOUT: %v", err)
	}
}
