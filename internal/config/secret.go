package config

import "encoding/json"

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
