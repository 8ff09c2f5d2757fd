// Package frontdoor is the gateway's OpenAI-compatible surface: it decodes OpenAI-shaped
// requests (JSON generations; multipart edits, variations and the extension operations), validates
// them against the model's capabilities, turns them into one canonical providers.Request, drives
// the upstream calls (fan-out for n above a model's per-call maximum, failover across a model's
// channels), converts the answer to the requested response_format and writes the OpenAI-shaped
// response. Every failure leaves in the OpenAI error envelope. It owns no provider knowledge.
package frontdoor
