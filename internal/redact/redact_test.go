package redact

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// key looks like an OpenAI project key; special is a secret whose URL and JSON spellings differ
// from its raw form.
const (
	key     = "sk-proj-Zx81mQe4LrT0vbN5sKp2WdYh"
	special = `tok+en/with&<odd>"chars\and space 09`
)

func TestString(t *testing.T) {
	r := New(key, special)
	cases := []struct{ name, in, want string }{
		{"clean", "nothing to see here", "nothing to see here"},
		{"raw", "Incorrect API key provided: " + key + ".", "Incorrect API key provided: [redacted]."},
		{"twice", key + key + " and " + key, "[redacted] and [redacted]"},
		{"query escaped", "https://x/?k=" + url.QueryEscape(special), "https://x/?k=[redacted]"},
		{"path escaped", "https://x/" + url.PathEscape(special), "https://x/[redacted]"},
		{"lower-case hex", "k=" + lowerHex(url.QueryEscape(special)), "k=[redacted]"},
		{"json escaped", `{"error":"` + jsonEscaped(special, true) + `"}`, `{"error":"[redacted]"}`},
		{"json escaped without html escaping", `{"error":"` + jsonEscaped(special, false) + `"}`, `{"error":"[redacted]"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Fatalf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := string(r.Bytes([]byte(tc.in))); got != tc.want {
				t.Fatalf("Bytes(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if r.Contains(tc.in) != (tc.in != tc.want) {
				t.Fatalf("Contains(%q) = %v", tc.in, r.Contains(tc.in))
			}
		})
	}
}

func jsonEscaped(s string, html bool) string {
	for _, f := range forms(s) {
		if f == s || strings.Contains(f, "%") {
			continue
		}
		if strings.Contains(f, `\u003c`) == html {
			return f
		}
	}
	panic("no JSON form")
}

func TestOverlappingSecretsLeaveNoFragment(t *testing.T) {
	a, b := "abcdefgh-XYZ12345", "XYZ12345-mnopqrst"
	r := New(a, b)
	if got := r.String("<abcdefgh-XYZ12345-mnopqrst>"); got != "<[redacted]>" {
		t.Fatalf("overlap: %q", got)
	}
	inner := "XYZ12345"
	r = New(inner, a)
	if got := r.String("1 abcdefgh-XYZ12345 2 XYZ12345 3"); got != "1 [redacted] 2 [redacted] 3" {
		t.Fatalf("nested: %q", got)
	}
	r = New("aaaaaaaa")
	if got := r.String("xaaaaaaaaaaay"); got != "x[redacted]y" {
		t.Fatalf("self-overlap: %q", got)
	}
}

func TestShortAndEmptySecretsAreIgnored(t *testing.T) {
	r := New("", "short", "1234567")
	for _, s := range []string{"a short line", "1234567", ""} {
		if got := r.String(s); got != s {
			t.Fatalf("String(%q) = %q", s, got)
		}
	}
	r.Add("12345678")
	if got := r.String("id 12345678"); got != "id [redacted]" {
		t.Fatalf("an 8-byte secret was not redacted: %q", got)
	}
}

func TestNilAndZero(t *testing.T) {
	var nilR *Redactor
	var zero Redactor
	for _, r := range []*Redactor{nilR, &zero} {
		if r.String(key) != key || string(r.Bytes([]byte(key))) != key || r.Contains(key) {
			t.Fatal("a redactor without secrets changed text")
		}
	}
	zero.Add(key)
	if zero.String(key) != Placeholder {
		t.Fatal("Add on the zero value did not take")
	}
}

func TestNoAllocationWhenClean(t *testing.T) {
	r := New(key, special, "another-secret-value-0001")
	// "sk-proj-" and "tok+" start needles: the candidate comparisons must not allocate either.
	line := strings.Repeat("GET /v1/images/generations 200 1.2s request_id=abc sk-proj-other tok+en ", 4)
	if n := testing.AllocsPerRun(100, func() { _ = r.String(line) }); n != 0 {
		t.Fatalf("String allocated %v times on a clean line", n)
	}
	b := []byte(line)
	if n := testing.AllocsPerRun(100, func() { _ = r.Bytes(b) }); n != 0 {
		t.Fatalf("Bytes allocated %v times on a clean line", n)
	}
}

func TestConcurrentAdd(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := fmt.Sprintf("secret-number-%04d", i)
			r.Add(s)
			for range 100 {
				_ = r.String("line with " + s)
			}
			if got := r.String("x " + s); got != "x [redacted]" {
				t.Errorf("after Add(%q): %q", s, got)
			}
		})
	}
	wg.Wait()
	if n := len(r.load().strs); n != 8 {
		t.Fatalf("%d needles, want 8", n)
	}
}

// Benchmarks: the common case is a log line with no secret in it.

func benchRedactor() *Redactor {
	return New("sk-proj-Zx81mQe4LrT0vbN5sKp2WdYhAAAA", "sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc",
		"0c7e8a52-4b1d-4f7a-9e3c-5d2b6a1f8e90", "ideogram-key-Q2xvdWRzIGFyZSBub3QgY290dG9u",
		"adm_7Yt3kLp9Qw2Xz8Rv5Nm1Bc4Df6Gh", "modelverse-4f3e2d1c0b9a8f7e6d5c4b3a")
}

const benchLine = `{"level":"info","ts":1718000000.123,"logger":"http","msg":"request","method":"POST",` +
	`"path":"/v1/images/generations","status":200,"took":1.234,"request_id":"req_8f7e6d5c4b3a2910",` +
	`"key_id":"k_123","model":"seedream-4","bytes":1048576,"provider":"ark","channel":"ark-main"}`

func BenchmarkStringClean(b *testing.B) {
	b.Run("6 secrets", func(b *testing.B) { benchClean(b, benchRedactor()) })
	r := benchRedactor()
	for i := range 24 {
		r.Add(fmt.Sprintf("sk-channel-%02d-0123456789abcdefghijkl", i))
	}
	b.Run("30 secrets", func(b *testing.B) { benchClean(b, r) })
}

func benchClean(b *testing.B, r *Redactor) {
	b.SetBytes(int64(len(benchLine)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String(benchLine)
	}
}

func BenchmarkStringDirty(b *testing.B) {
	r := benchRedactor()
	line := benchLine + " upstream said: invalid key sk-9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc"
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.String(line)
	}
}

func TestOfIsSharedAndScrubs(t *testing.T) {
	a, b := Of("sk-shared-secret-1"), Of("sk-shared-secret-1")
	if a != b {
		t.Error("Of built two redactors for one secret")
	}
	if got := a.String(`key "sk-shared-secret-1" and sk-shared-secret-1`); strings.Contains(got, "sk-shared") {
		t.Errorf("Of's redactor left the secret in %q", got)
	}
	if Of("sk-other-secret-22") == a {
		t.Error("two secrets share a redactor")
	}
}
