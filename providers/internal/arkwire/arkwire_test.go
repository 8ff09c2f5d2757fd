package arkwire

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imagegw/imagegw/providers"
)

func TestB64(t *testing.T) {
	cases := []struct {
		raw, data, ct string
		bad           bool
	}{
		{raw: `"aGk="`, data: "hi"},
		{raw: `"aGk"`, data: "hi"},
		{raw: `"data:IMAGE/PNG;base64,aGk="`, data: "hi", ct: "image/png"},
		{raw: `"data:image\/png;base64,aGk="`, data: "hi", ct: "image/png"},
		{raw: `null`},
		{raw: `""`},
		{raw: `"data:image/png,aGk="`, bad: true},
		{raw: `"a*b="`, bad: true},
		{raw: `5`, bad: true},
	}
	for _, tc := range cases {
		var f B64
		err := json.Unmarshal([]byte(tc.raw), &f)
		if err == nil {
			err = f.resolve(nil) // a number is an index into what Decode set aside: none here
		}
		data, _ := f.Bytes()
		if (err != nil) != tc.bad || string(data) != tc.data || f.ContentType != tc.ct {
			t.Errorf("%s: data %q type %q err %v", tc.raw, data, f.ContentType, err)
		}
		// The same value inside an answer, set aside by Decode and resolved by ToResult.
		var r Response
		texts, err := Decode("v", "p", []byte(`{"data":[{"b64_json":`+tc.raw+`}]}`), &r)
		if err == nil {
			r.Texts = texts
			err = r.Data[0].B64JSON.resolve(r.Texts)
		}
		data, _ = r.Data[0].B64JSON.Bytes()
		if (err != nil) != tc.bad || string(data) != tc.data || r.Data[0].B64JSON.ContentType != tc.ct {
			t.Errorf("in an answer %s: data %q type %q err %v", tc.raw, data, r.Data[0].B64JSON.ContentType, err)
		}
	}
}

func TestClip(t *testing.T) {
	if Clip("short") != "short" {
		t.Fatal("a short text was changed")
	}
	// "x" and then two-byte runes: the cut at byte 300 falls inside a rune.
	got := Clip("x" + strings.Repeat("é", 200))
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || len(got) > 300+len("…") {
		t.Fatalf("Clip gave %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestNewChannel(t *testing.T) {
	c, err := NewChannel("v", "https://example.com/v1/", time.Minute, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "v" || c.Endpoint != "https://example.com/v1/images/generations" || c.Timeout != time.Minute || c.HTTP == nil || c.Log == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	for _, cfg := range []providers.Config{{}, {APIKey: "k", BaseURL: "ftp://x"}, {APIKey: "k", BaseURL: "/v1"}, {APIKey: "k", Options: map[string]string{"x": "y"}}} {
		if _, err := NewChannel("v", "https://example.com", time.Minute, cfg); err == nil || !strings.HasPrefix(err.Error(), "v: ") {
			t.Errorf("config %+v: %v", cfg, err)
		}
	}
}

func TestPost(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		switch r.URL.Query().Get("case") {
		case "slow":
			<-r.Context().Done()
		case "big":
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	defer srv.Close()
	c := &Channel{Vendor: "v", Name: "ch", Endpoint: srv.URL, APIKey: "sk-1", Timeout: time.Second, MaxBytes: 50, HTTP: srv.Client()}
	a, err := c.Post(context.Background(), []byte(`{}`), http.Header{"X-Id": {"1"}})
	if err != nil || a.Status != http.StatusTooManyRequests || !a.Failed() || string(a.Body) != "{}" {
		t.Fatalf("answer %+v, %v", a, err)
	}
	if got.Get("Authorization") != "Bearer sk-1" || got.Get("Content-Type") != "application/json" || got.Get("Accept") != "application/json" || got.Get("X-Id") != "1" {
		t.Fatalf("request headers %v", got)
	}
	c.Endpoint = srv.URL + "?case=big"
	if _, err := c.Post(context.Background(), nil, nil); providers.KindOf(err) != providers.KindUpstreamBadResponse {
		t.Fatalf("over the cap: %v", err)
	}
	c.Endpoint, c.Timeout = srv.URL+"?case=slow", 50*time.Millisecond
	if _, err := c.Post(context.Background(), nil, nil); providers.KindOf(err) != providers.KindUpstreamTimeout || strings.Contains(err.Error(), "sk-1") {
		t.Fatalf("timeout: %v", err)
	}
}

func TestErrorFromResponse(t *testing.T) {
	classify := func(eb ErrorBody) (*providers.Error, string) {
		return &providers.Error{Kind: providers.KindInvalidRequest, Message: "m", Code: eb.Code}, "id-" + eb.Param
	}
	body := []byte(`{"error":{"code":"c","message":"upstream words","param":"p","type":5}}`)
	e := ErrorFromResponse("v", 429, http.Header{"Content-Type": {"application/problem+json"}, "Retry-After": {"3"}}, body, classify)
	if e.Code != "c" || e.RetryAfter != 3*time.Second || !strings.Contains(e.Err.Error(), `v: upstream HTTP 429 code "c" type "" request id "id-p": upstream words`) {
		t.Fatalf("got %+v: %v", e, e.Err)
	}
	e = ErrorFromResponse("v", 400, http.Header{"Content-Type": {"text/plain"}, "Retry-After": {"3"}}, body, classify)
	if e.Code != "" || e.RetryAfter != 0 || !strings.Contains(e.Err.Error(), "non-envelope body: ") {
		t.Fatalf("a text body was read as an envelope: %+v: %v", e, e.Err)
	}
}

// TestAnswerKeep: the body of an answer whose images point into it goes with the Result (its
// Release gives the buffer back); otherwise the Answer's Release does.
func TestAnswerKeep(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"created":1,"data":[{"b64_json":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}]}`))
	}))
	defer srv.Close()
	c, err := NewChannel("v", srv.URL, time.Minute, providers.Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := c.Post(context.Background(), []byte(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if r.Texts, err = Decode("v", "p", ans.Body, &r); err != nil {
		t.Fatal(err)
	}
	res, err := ToResult("v", "p", &r, Hints{Want: "b64_json"}, time.Now(), Failures{})
	if err != nil || len(res.Images) != 1 || len(res.Images[0].B64) == 0 || res.Images[0].ContentType != "image/png" {
		t.Fatalf("%+v %v", res, err)
	}
	if &res.Images[0].B64[0] != &ans.Body[bytes.Index(ans.Body, []byte("iVBOR"))] {
		t.Fatal("the image's text was copied out of the body")
	}
	ans.Keep(res)
	if ans.release != nil {
		t.Fatal("Keep left the buffer with the answer")
	}
	ans.Release() // nothing: the result has it
	res.Release()
	res.Release()
}
