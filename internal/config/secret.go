package config

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Secret is a credential. It prints, logs and marshals as "[redacted]"; Value returns it.
type Secret string

const redacted = "[redacted]"

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return string(s) }

// String redacts a non-empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts, so %#v does not leak it.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON redacts.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// SecretURL is a URL that may carry a credential (a database or Redis URL). It prints, logs and
// marshals with only its password redacted ("postgres://app:[redacted]@db:5432/imagegw"), so an
// operator still sees which user, host and database it names; Value returns it whole.
type SecretURL string

// Value returns the URL itself, for the one place that connects with it.
func (s SecretURL) Value() string { return string(s) }

// String redacts the password.
func (s SecretURL) String() string { return RedactURL(string(s)) }

// GoString redacts, so %#v does not leak it.
func (s SecretURL) GoString() string { return s.String() }

// MarshalJSON redacts.
func (s SecretURL) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML redacts.
func (s SecretURL) MarshalYAML() (any, error) { return s.String(), nil }

// passwordParams are query parameters that carry a password (libpq's and go-redis's spellings).
var passwordParams = []string{"password", "sslpassword", "pass"}

// RedactURL replaces the password of a URL, in its user information or a password query
// parameter, with "[redacted]", keeping the scheme, user, host, path and other parameters. A
// value it cannot parse as a URL with certainty is redacted whole.
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	// An '@' outside the user information means the URL did not parse as its driver may read it
	// (a password with '/', '?' or '#' cuts it short): show none of it.
	if err != nil || u.User == nil && strings.Contains(raw, "@") {
		return redacted
	}
	const mark = "imagegwredactedpassword"
	changed := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mark)
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if slices.Contains(passwordParams, strings.ToLower(k)) {
				q[k] = []string{mark}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return raw
	}
	return strings.ReplaceAll(u.String(), mark, redacted)
}
