package sandbox

import (
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// kinds is the closed set of providers.Kind values a simulated failure may take.
var kinds = []providers.Kind{
	providers.KindInvalidRequest, providers.KindUnsupported, providers.KindContentPolicy,
	providers.KindModelNotFound, providers.KindTooLarge,
	providers.KindUnauthenticated, providers.KindPermissionDenied, providers.KindRateLimited, providers.KindQuotaExceeded,
	providers.KindUpstreamAuth, providers.KindUpstreamRateLimited, providers.KindUpstreamUnavailable,
	providers.KindUpstreamTimeout, providers.KindUpstreamBadResponse,
	providers.KindInternal, providers.KindUnavailable, providers.KindCanceled,
}

// simulatedRetryAfter is the wait a simulated rate limit asks for.
const simulatedRetryAfter = time.Second

// knownKind reports whether k is one of the kinds.
func knownKind(k providers.Kind) bool {
	for _, kk := range kinds {
		if kk == k {
			return true
		}
	}
	return false
}

// kindList lists the kinds for a message.
func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// simulated is the error of a failure asked for by the channel's "fail" option or, when
// fromPrompt, by a [sandbox:fail=KIND] directive in the prompt (then caller-fault kinds name
// "prompt" as their parameter).
func simulated(channel string, k providers.Kind, fromPrompt bool) *providers.Error {
	why := "the channel's fail option asked for it"
	if fromPrompt {
		why = "the prompt asked for it with [sandbox:fail=" + string(k) + "]"
	}
	// A simulated failure stands for an upstream's answer: it carries the status one would.
	e := &providers.Error{Kind: k, Provider: channel, Code: "sandbox_simulated", Status: simulatedStatus(k),
		Message: "the sandbox simulated a " + string(k) + " failure: " + why}
	switch k {
	case providers.KindUpstreamRateLimited, providers.KindRateLimited:
		e.RetryAfter = simulatedRetryAfter
	case providers.KindInvalidRequest, providers.KindUnsupported, providers.KindContentPolicy, providers.KindTooLarge:
		if fromPrompt {
			e.Param = "prompt"
		}
	}
	return e
}

// simulatedStatus is the HTTP status an upstream would answer a failure of kind k with.
func simulatedStatus(k providers.Kind) int {
	switch k.Fault() {
	case providers.FaultCaller:
		if k == providers.KindTooLarge {
			return 413
		}
		return 400
	}
	switch k {
	case providers.KindUpstreamRateLimited, providers.KindRateLimited:
		return 429
	case providers.KindUpstreamAuth:
		return 401
	case providers.KindUpstreamUnavailable, providers.KindUnavailable:
		return 503
	case providers.KindUpstreamBadResponse:
		return 502
	}
	return 0 // timeouts, cancellations: no answer
}

// withProvider sets the channel name on an *providers.Error built without one.
func withProvider(channel string, err error) error {
	if e, ok := err.(*providers.Error); ok && e.Provider == "" {
		e.Provider = channel
	}
	return err
}
