package sandbox

import (
	"strconv"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// directivePrefix opens a prompt directive: [sandbox:NAME=VALUE].
const directivePrefix = "[sandbox:"

// maxDirectiveLatency caps [sandbox:latency=...], so a prompt cannot hold a request for long.
const maxDirectiveLatency = 60 * time.Second

// directives are the test controls a prompt carries (see the package documentation).
type directives struct {
	// fail, when set, is the kind the call fails with.
	fail providers.Kind
	// withhold is how many of the rendered images are not delivered.
	withhold int
	// latency is added to the call.
	latency time.Duration
}

// parseDirectives reads the [sandbox:NAME=VALUE] directives of a prompt. A malformed, unknown or
// repeated directive is a KindInvalidRequest naming "prompt"; the message quotes only the
// directive, never the rest of the prompt.
func parseDirectives(prompt string) (directives, error) {
	var d directives
	seen := map[string]bool{}
	rest := prompt
	for {
		i := strings.Index(rest, directivePrefix)
		if i < 0 {
			return d, nil
		}
		rest = rest[i+len(directivePrefix):]
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return d, providers.ParamError("prompt", "unterminated sandbox directive: write [sandbox:NAME=VALUE]")
		}
		body := rest[:end]
		rest = rest[end+1:]
		name, value, ok := strings.Cut(body, "=")
		if !ok || name == "" || value == "" {
			return d, providers.ParamError("prompt", "malformed sandbox directive %s: write [sandbox:NAME=VALUE]", quoteDirective(body))
		}
		if seen[name] {
			return d, providers.ParamError("prompt", "the sandbox directive %s is given twice", quoteDirective(name))
		}
		seen[name] = true
		switch name {
		case "fail":
			k := providers.Kind(value)
			if !knownKind(k) {
				return d, providers.ParamError("prompt", "[sandbox:fail=...] needs a known error kind (%s)", kindList())
			}
			d.fail = k
		case "withhold":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > maxN {
				return d, providers.ParamError("prompt", "[sandbox:withhold=K] needs K between 0 and %d", maxN)
			}
			d.withhold = n
		case "latency":
			l, err := time.ParseDuration(value)
			if err != nil || l < 0 || l > maxDirectiveLatency {
				return d, providers.ParamError("prompt", "[sandbox:latency=D] needs a duration such as 500ms, at most %s", maxDirectiveLatency)
			}
			d.latency = l
		default:
			return d, providers.ParamError("prompt", "unknown sandbox directive %s (known: fail, withhold, latency)", quoteDirective(name))
		}
	}
}

// quoteDirective quotes a piece of a directive for a message, shortened so that a huge prompt
// cannot make a huge error.
func quoteDirective(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.QuoteToASCII(s)
}
