package securitytest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/gatewaytest"
)

// An upstream that echoes our API key in every field of its error (or in a raw page) never gets
// it to a client or a log line: clients get the gateway's own words in the OpenAI envelope, with
// param and code only from the adapter's fixed lists. (checkNoSecrets greps everything.)
func TestUpstreamEchoingTheKeyLeaksNothing(t *testing.T) {
	s := newSuite(t, options{})
	for _, status := range []int{400, 401, 403, 404, 422, 429, 500, 503} {
		for _, verb := range []string{"echo", "raw"} {
			resp, body := s.generate(verb + ":" + strconv.Itoa(status))
			if resp.StatusCode < 400 {
				t.Errorf("%s:%d answered %d", verb, status, resp.StatusCode)
			}
			msg, _, code, param := envelope(t, body)
			if strings.Contains(msg, "Incorrect API key") || strings.Contains(msg, "<html>") {
				t.Errorf("%s:%d: the upstream's own words reached the client: %q", verb, status, msg)
			}
			if param != nil && strings.HasPrefix(*param, "sk-") || strings.HasPrefix(code, "sk-") {
				t.Errorf("%s:%d: param %v code %q", verb, status, param, code)
			}
			if resp.Header.Get("X-Imagegw-Cost") != "0" {
				t.Errorf("%s:%d: cost %q for a failure", verb, status, resp.Header.Get("X-Imagegw-Cost"))
			}
		}
	}
}

// Provider API calls do not follow redirects: a 307 is an upstream fault, the redirect target
// gets nothing (not the body, not the key), and nothing it says is delivered or billed.
func TestProviderRedirectsAreNotFollowed(t *testing.T) {
	s := newSuite(t, options{})
	resp, body := s.generate("redirect")
	if resp.StatusCode != 502 || resp.Header.Get("X-Imagegw-Cost") != "0" {
		t.Fatalf("a redirecting upstream: %d cost %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	if strings.Contains(string(body), s.up.target.URL) {
		t.Errorf("the redirect target reached the client: %s", body)
	}
	if n := s.up.targetHits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

// Image downloads (a provider's URL, for b64_json) may follow redirects but carry no
// credentials on any hop.
func TestImageDownloadsCarryNoCredentials(t *testing.T) {
	s := newSuite(t, options{})
	resp, body := s.generate("url-redirect")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	s.up.mu.Lock()
	defer s.up.mu.Unlock()
	if len(s.up.targetAuth) > 0 {
		t.Errorf("an image download carried credentials: %v", s.up.targetAuth)
	}
}

// An upstream's Retry-After is clamped: a billion seconds, or one that overflows a duration,
// reaches the client as at most providers.MaxRetryAfter (600 s), never negative.
func TestUpstreamRetryAfterIsClamped(t *testing.T) {
	s := newSuite(t, options{})
	for _, v := range []string{"1000000000", "9223372036", "99999999999999999999"} {
		resp, body := s.generate("retry-after:" + v)
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != 429 && resp.StatusCode != 502 && resp.StatusCode != 503 {
			t.Errorf("Retry-After %s: status %d %s", v, resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") != "" && (err != nil || ra < 0 || ra > 600) {
			t.Errorf("upstream Retry-After %s reached the client as %q", v, resp.Header.Get("Retry-After"))
		}
		if ms := resp.Header.Get("retry-after-ms"); ms != "" {
			if n, err := strconv.ParseInt(ms, 10, 64); err != nil || n < 0 || n > 600_000 {
				t.Errorf("upstream Retry-After %s reached the client as retry-after-ms %q", v, ms)
			}
		}
	}
}

// outbound.timeout bounds a download from a provider URL that trickles (one byte a second):
// the request fails within the timeout (3 s here), not after the whole image.
func TestTricklingImageURLTimesOut(t *testing.T) {
	s := newSuite(t, options{})
	start := time.Now()
	resp, body := s.generate("url-trickle")
	took := time.Since(start)
	if resp.StatusCode < 500 || resp.Header.Get("X-Imagegw-Cost") != "0" {
		t.Fatalf("a trickling image: %d cost %q %s", resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
	}
	// Not a performance assertion: without the timeout this takes len(png) seconds (~100 s).
	if took > 30*time.Second {
		t.Errorf("a trickling image held the request %s; outbound.timeout is 3s", took)
	}
}

// A decompression bomb (a PNG declaring 100,000² pixels) and an endless answer are refused
// without being decoded or read to the end, and nothing is billed.
func TestUpstreamBombsAreRefused(t *testing.T) {
	s := newSuite(t, options{})
	for _, verb := range []string{"bomb", "big"} {
		resp, body := s.generate(verb)
		if resp.StatusCode < 500 || resp.Header.Get("X-Imagegw-Cost") != "0" {
			t.Errorf("%s: %d cost %q %s", verb, resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
		}
	}
}

// The app's logger scrubs every configured secret, whoever logs it (checkNoSecrets greps the
// log), and so does the error a client gets.
func TestLoggerScrubsConfiguredSecrets(t *testing.T) {
	s := newSuite(t, options{})
	s.g.App.Logger.Warn("probe: upstream said "+upstreamKey, zap.String("body", "Bearer "+upstreamKey),
		zap.Error(fmt.Errorf("wrapped: %s", gatewaytest.AdminToken)))
	if !strings.Contains(s.log.String(), "probe: upstream said [redacted]") {
		t.Fatalf("the probe line is missing or not redacted:\n%s", s.log.String())
	}
}

// An upstream that does not say what size it made: data[].size is read from the image's header.
func TestSizeFromTheImageHeader(t *testing.T) {
	s := newSuite(t, options{})
	resp, body := s.generate("ok")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"size":"64x64"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
