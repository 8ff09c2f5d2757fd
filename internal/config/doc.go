// Package config loads the gateway's configuration: one YAML file, then environment overrides,
// on top of built-in defaults, so no file is needed to run. Unknown fields are rejected and every
// problem is reported at once. Secrets are of type Secret, which redacts itself wherever the
// configuration is printed, logged or marshalled.
package config
