package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Placeholder replaces every occurrence of a secret.
const Placeholder = "[redacted]"

// MinSecretLen is the length below which a secret is ignored. Replacing a short string everywhere
// would mangle ordinary log text (a four-letter "key" occurs in words, ids and numbers) and make
// the placeholder an oracle for guessing it; a credential that short offers no protection to
// begin with. Configuration validation, not the redactor, should refuse such secrets.
const MinSecretLen = 8

// Redactor replaces known secrets in text. The zero value and a nil *Redactor know no secret and
// return text unchanged. A Redactor is safe for concurrent use; Add may run while others scrub.
type Redactor struct {
	mu sync.Mutex // serializes Add
	// set is the current immutable set of forms to look for, swapped whole by Add so that
	// readers never lock.
	set atomic.Pointer[needles]
}

// New returns a Redactor that knows secrets. Empty secrets and secrets shorter than
// MinSecretLen bytes are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Of returns a Redactor that knows one secret, shared by every caller with the same secret:
// adapters scrub with their channel's key on every call, and building the forms of a secret
// (escaped, JSON-quoted) each time was a measurable part of a request. At most ofCacheSize
// secrets are kept; past that Of builds a fresh Redactor, as New does.
func Of(secret string) *Redactor {
	ofCache.Lock()
	defer ofCache.Unlock()
	if r, ok := ofCache.m[secret]; ok {
		return r
	}
	r := New(secret)
	if len(ofCache.m) < ofCacheSize {
		if ofCache.m == nil {
			ofCache.m = map[string]*Redactor{}
		}
		ofCache.m[secret] = r
	}
	return r
}

// ofCacheSize bounds Of's cache: far more than a deployment's channels.
const ofCacheSize = 1024

var ofCache struct {
	sync.Mutex
	m map[string]*Redactor
}

// Add teaches r more secrets (empty and short ones are ignored, as in New).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next []string
	if cur := r.set.Load(); cur != nil {
		next = slices.Clone(cur.strs)
	}
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue
		}
		for _, f := range forms(s) {
			if !slices.Contains(next, f) {
				next = append(next, f)
			}
		}
	}
	// Longest first: where a secret contains another, the longer one is compared first (the
	// replacement merges overlapping matches anyway), and the last one sets the minimum length.
	slices.SortStableFunc(next, func(a, b string) int { return len(b) - len(a) })
	r.set.Store(newNeedles(next))
}

// forms returns the spellings of s to look for: raw, percent-encoded (query and path escaping,
// upper- and lower-case hex) and JSON-escaped (with and without HTML escaping).
func forms(s string) []string {
	out := []string{s}
	add := func(f string) {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, esc := range []string{url.QueryEscape(s), url.PathEscape(s)} {
		add(esc)
		add(lowerHex(esc))
	}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(s) == nil {
			q := strings.TrimSuffix(b.String(), "\n")
			add(q[1 : len(q)-1]) // without the quotes
		}
	}
	return out
}

// lowerHex lower-cases the hex digits of every %XX escape in s.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// needles are the forms of all secrets, longest first, and a filter that makes scanning text
// for any of them one pass: a bitmap of the byte pairs that start a needle.
type needles struct {
	strs   []string
	minLen int
	pairs  [1 << 16 / 64]uint64
	byPair map[uint16][]string // the needles each pair starts, longest first
}

// newNeedles indexes strs, which must be sorted longest first.
func newNeedles(strs []string) *needles {
	n := &needles{strs: strs, byPair: make(map[uint16][]string)}
	for _, s := range strs {
		p := pair(s[0], s[1])
		n.pairs[p/64] |= 1 << (p % 64)
		n.byPair[p] = append(n.byPair[p], s)
		n.minLen = len(s) // the last is the shortest
	}
	return n
}

func pair(a, b byte) uint16 { return uint16(a)<<8 | uint16(b) }

// in reports whether any needle occurs in s. It looks at each position once and compares
// needles only where the position's two bytes start one, so its cost hardly grows with the
// number of secrets.
func in[T string | []byte](n *needles, s T) bool {
	if len(n.strs) == 0 || len(s) < n.minLen {
		return false
	}
	for i := 0; i <= len(s)-n.minLen; i++ {
		p := pair(s[i], s[i+1])
		if n.pairs[p/64]&(1<<(p%64)) == 0 {
			continue
		}
		for _, nd := range n.byPair[p] {
			if len(s)-i >= len(nd) && string(s[i:i+len(nd)]) == nd {
				return true
			}
		}
	}
	return false
}

// none is the needle set of a Redactor that knows no secret.
var none = &needles{}

func (r *Redactor) load() *needles {
	if r == nil {
		return none
	}
	if p := r.set.Load(); p != nil {
		return p
	}
	return none
}

// Contains reports whether s holds any known secret, in any recognised form.
func (r *Redactor) Contains(s string) bool {
	return in(r.load(), s)
}

// containsBytes is Contains for a byte slice.
func (r *Redactor) containsBytes(b []byte) bool { return in(r.load(), b) }

// String returns s with every occurrence of every known secret replaced by Placeholder. When no
// secret occurs it returns s itself and allocates nothing. Overlapping or adjacent occurrences
// (of one secret or of several) become a single Placeholder, so no fragment of a secret survives.
func (r *Redactor) String(s string) string {
	if set := r.load(); in(set, s) {
		return replace(s, set.strs)
	}
	return s
}

// Bytes is String for a byte slice. It returns b itself when no secret occurs.
func (r *Redactor) Bytes(b []byte) []byte {
	if set := r.load(); in(set, b) {
		return []byte(replace(string(b), set.strs))
	}
	return b
}

// replace replaces every match of needles in s. It collects the byte ranges of all matches
// first and merges the overlapping ones, so that two secrets that overlap in s (or a secret
// that contains another) leave no fragment behind.
func replace(s string, needles []string) string {
	type span struct{ from, to int }
	var spans []span
	for _, n := range needles {
		for i := 0; ; {
			j := strings.Index(s[i:], n)
			if j < 0 {
				break
			}
			spans = append(spans, span{i + j, i + j + len(n)})
			i += j + 1
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	var out strings.Builder
	out.Grow(len(s))
	last := 0 // end of the text already written or replaced
	for k := 0; k < len(spans); {
		from, to := spans[k].from, spans[k].to
		for k++; k < len(spans) && spans[k].from <= to; k++ {
			to = max(to, spans[k].to)
		}
		out.WriteString(s[last:from])
		out.WriteString(Placeholder)
		last = to
	}
	out.WriteString(s[last:])
	return out.String()
}
