package config

import (
	"strings"
	"testing"
	"time"
)

func TestConnectionAndBodyLimits(t *testing.T) {
	c, err := Load("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// 0: the server's defaults (80 % of RLIMIT_NOFILE, 4096 bytes/s after 10s, 10m).
	if l := c.Limits; l.MaxConnections != 0 || l.BodyMinRate != 0 || l.BodyReadGrace != 0 || l.BodyReadTimeout != 0 {
		t.Fatalf("defaults: %+v", l)
	}

	c, err = Load(write(t, `
limits:
  max_connections: 5000
  body_min_rate: 2048
  body_read_grace: 5s
  body_read_timeout: 2m
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Limits; l.MaxConnections != 5000 || l.BodyMinRate != 2048 || l.BodyReadGrace.D() != 5*time.Second || l.BodyReadTimeout.D() != 2*time.Minute {
		t.Fatalf("from YAML: %+v", l)
	}

	c, err = Load(write(t, "limits: {max_connections: 5000, body_min_rate: 2048}\n"), env(map[string]string{
		"IMAGEGW_MAX_CONNECTIONS": "-1", "IMAGEGW_BODY_MIN_RATE": "-1",
		"IMAGEGW_BODY_READ_GRACE": "3s", "IMAGEGW_BODY_READ_TIMEOUT": "-1s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Limits; l.MaxConnections != -1 || l.BodyMinRate != -1 || l.BodyReadGrace.D() != 3*time.Second || l.BodyReadTimeout.D() != -time.Second {
		t.Fatalf("env over YAML: %+v", l)
	}
}

func TestConnectionAndBodyLimitsValidated(t *testing.T) {
	for _, c := range []struct {
		yaml string
		env  map[string]string
		want string
	}{
		{yaml: "limits: {max_connections: 3}", want: "limits.max_connections: 3 is below 16"},
		{yaml: "limits: {body_min_rate: 2000000000}", want: "limits.body_min_rate"},
		{yaml: "limits: {body_read_grace: -1s}", want: "limits.body_read_grace: -1s must not be negative"},
		{yaml: "limits: {body_read_grace: 1ms}", want: "limits.body_read_grace: 1ms is below 100ms"},
		{yaml: "limits: {body_read_timeout: 10ms}", want: "limits.body_read_timeout: 10ms is below 1s"},
		{yaml: "limits: {body_read_grace: 2m, body_read_timeout: 1m}", want: "is longer than limits.body_read_timeout"},
		{yaml: "limits: {body_read_grace: soon}", want: "is not a duration"},
		{env: map[string]string{"IMAGEGW_MAX_CONNECTIONS": "lots"}, want: `IMAGEGW_MAX_CONNECTIONS: "lots" is not an integer`},
		{env: map[string]string{"IMAGEGW_MAX_CONNECTIONS": "99999999999"}, want: "IMAGEGW_MAX_CONNECTIONS: 99999999999 is out of range"},
		{env: map[string]string{"IMAGEGW_BODY_MIN_RATE": "1.5"}, want: `IMAGEGW_BODY_MIN_RATE: "1.5" is not an integer`},
		{env: map[string]string{"IMAGEGW_BODY_READ_GRACE": "10"}, want: "IMAGEGW_BODY_READ_GRACE"},
		{env: map[string]string{"IMAGEGW_BODY_READ_TIMEOUT": "x"}, want: "IMAGEGW_BODY_READ_TIMEOUT"},
	} {
		path := ""
		if c.yaml != "" {
			path = write(t, c.yaml+"\n")
		}
		_, err := Load(path, env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want one mentioning %q", c.yaml, c.env, err, c.want)
		}
	}
}
