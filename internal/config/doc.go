// Package config loads the gateway's configuration: one YAML file, then environment overrides,
// on top of built-in defaults, so no file is needed to run. Unknown fields are rejected and every
// problem (of the file, of the environment and of the values they make) is reported at once, in
// one *Error. Durations take days too (ParseDuration: "7d", "1d12h"). Secrets are of type Secret,
// which redacts itself wherever the configuration is printed, logged or marshalled; database and
// Redis URLs are of type SecretURL, which redacts only their password.
package config
