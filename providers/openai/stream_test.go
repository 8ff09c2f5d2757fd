package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

func TestStreams(t *testing.T) {
	a, _, _ := openAIFake(t, fake.Options{}, nil)
	for _, tc := range []struct {
		model string
		op    providers.Operation
		want  bool
	}{
		{"gpt-image-1", providers.OpGenerate, true},
		{"gpt-image-1-mini", providers.OpEdit, true},
		{"dall-e-3", providers.OpGenerate, false},
		{"dall-e-2", providers.OpEdit, false},
		{"dall-e-2", providers.OpVariation, false},
	} {
		if got := a.Streams(&providers.Request{Model: tc.model, Operation: tc.op}); got != tc.want {
			t.Errorf("Streams(%s %s) = %v", tc.model, tc.op, got)
		}
	}
	_, _, err := a.Stream(context.Background(), &providers.Request{Model: "dall-e-3", Prompt: "x", N: 1}, 2, nil)
	if providers.KindOf(err) != providers.KindUnsupported {
		t.Fatalf("dall-e-3 streamed: %v", err)
	}
	_, _, err = a.Stream(context.Background(), &providers.Request{Model: "gpt-image-1", Prompt: "x", N: 1}, 4, nil)
	if providers.KindOf(err) != providers.KindInvalidRequest {
		t.Fatalf("partial_images 4: %v", err)
	}
}

// TestStreamGenerateAgainstFake: the adapter sends stream and partial_images, hands the partial
// images over while the stream runs and makes the result of the completed events.
func TestStreamGenerateAgainstFake(t *testing.T) {
	var seen []int
	var mu sync.Mutex
	handed := make(chan int, 8)
	// The fake holds each completed event until the adapter has handed over the image's two
	// partial images: they are relayed while the upstream is still working.
	a, f, _ := openAIFake(t, fake.Options{StreamPause: func(ctx context.Context, ev string) {
		if !strings.HasSuffix(ev, ".completed") {
			return
		}
		for range 2 {
			select {
			case <-handed:
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
				return // the order check below fails
			}
		}
		mu.Lock()
		seen = append(seen, -1)
		mu.Unlock()
	}}, nil)
	req := &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1", Prompt: "a red fox", N: 2, Quality: "low",
		Width: 1024, Height: 1024}
	var partials []providers.Partial
	res, details, err := a.Stream(context.Background(), req, 2, func(p providers.Partial) {
		mu.Lock()
		seen = append(seen, p.Index)
		mu.Unlock()
		partials = append(partials, p)
		handed <- p.Index
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[0 1 -1 0 1 -1]" {
		t.Fatalf("order of events %v", seen)
	}
	var body map[string]any
	if err := json.Unmarshal(f.LastRequest().Body, &body); err != nil || body["stream"] != true || body["partial_images"] != 2.0 {
		t.Fatalf("request %s", f.LastRequest().Body)
	}
	if h := f.LastRequest().Header.Get("Accept"); h != "text/event-stream" {
		t.Fatalf("Accept %q", h)
	}
	for _, p := range partials {
		if cfg, err := png.DecodeConfig(bytes.NewReader(p.Data)); err != nil || cfg.Width != 1024 || p.ContentType != "image/png" ||
			p.Width != 1024 || p.Quality != "low" || p.OutputFormat != "png" || p.Background != "opaque" {
			t.Fatalf("partial %+v: %v", p.StreamDetails, err)
		}
	}
	if len(res.Images) != 2 || len(details) != 2 || res.UpstreamRequestID == "" || res.Created.IsZero() {
		t.Fatalf("result %+v, %d details", res, len(details))
	}
	plain, err := a.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range res.Images {
		if !bytes.Equal(bytesOf(t, im), bytesOf(t, plain.Images[i])) || im.Width != 1024 || im.ContentType != "image/png" {
			t.Fatalf("streamed image %d differs from the plain one", i)
		}
		if d := details[i]; d.Usage == nil || d.Usage.TotalTokens == 0 || d.Quality != "low" {
			t.Fatalf("details %+v", d)
		}
	}
}

func TestStreamEditAgainstFake(t *testing.T) {
	a, f, _ := openAIFake(t, fake.Options{}, nil)
	req := &providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "a hat", N: 1, Quality: "low",
		Images: []providers.Image{pngImage(t, 64, 64, true)}}
	n := 0
	res, _, err := a.Stream(context.Background(), req, 1, func(providers.Partial) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(res.Images) != 1 {
		t.Fatalf("%d partials, %d images", n, len(res.Images))
	}
	last := f.LastRequest()
	_, params, _ := mime.ParseMediaType(last.Header.Get("Content-Type"))
	form, err := multipart.NewReader(bytes.NewReader(last.Body), params["boundary"]).ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if form.Value["stream"][0] != "true" || form.Value["partial_images"][0] != "1" {
		t.Fatalf("form %v", form.Value)
	}
}

// sseServer answers every call with status, content type and body as given.
func sseServer(t *testing.T, status int, ctype, body string) *Adapter {
	t.Helper()
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	a, err := New(providers.Config{Name: "openai-test", BaseURL: srv.URL + "/v1", APIKey: testKey, HTTP: srv.Client(), MaxResponseBytes: testMaxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStreamAnswers(t *testing.T) {
	img := pngImage(t, 8, 8, false).Data
	b64 := func(b []byte) string { s, _ := json.Marshal(b); return string(s) } // []byte marshals as base64
	partial := `event: image_generation.partial_image` + "\n" +
		`data: {"type":"image_generation.partial_image","b64_json":` + b64(img) + `,"created_at":1700000000,"size":"8x8","quality":"low","background":"opaque","output_format":"png","partial_image_index":0}` + "\n\n"
	completed := `event: image_generation.completed` + "\n" +
		`data: {"type":"image_generation.completed","b64_json":` + b64(img) + `,"created_at":1700000000,"size":"8x8","quality":"low","background":"opaque","output_format":"png","usage":{"input_tokens":5,"input_tokens_details":{"image_tokens":0,"text_tokens":5},"output_tokens":7,"total_tokens":12}}` + "\n\n"
	req := func() *providers.Request {
		return &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1", Prompt: "x", N: 1}
	}
	for _, tc := range []struct {
		name     string
		status   int
		ctype    string
		body     string
		kind     providers.Kind
		partials int
		images   int
	}{
		{name: "partial then completed, CRLF and a comment", status: 200, ctype: "text/event-stream",
			body: ": keep-alive\r\n\r\n" + strings.ReplaceAll(partial+completed, "\n", "\r\n"), partials: 1, images: 1},
		{name: "no blank line after the last event", status: 200, ctype: "text/event-stream; charset=utf-8",
			body: partial + strings.TrimSuffix(completed, "\n\n"), partials: 1, images: 1},
		{name: "done marker", status: 200, ctype: "text/event-stream", body: completed + "data: [DONE]\n\n", images: 1},
		{name: "error event after a partial", status: 200, ctype: "text/event-stream",
			body:     partial + "event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
			partials: 1, kind: providers.KindUpstreamUnavailable},
		{name: "moderation error event", status: 200, ctype: "text/event-stream",
			body: "event: error\ndata: {\"error\":{\"message\":\"no\",\"type\":\"image_generation_user_error\",\"param\":null,\"code\":\"moderation_blocked\"}}\n\n",
			kind: providers.KindContentPolicy},
		{name: "stream ends before an image is complete", status: 200, ctype: "text/event-stream", body: partial,
			partials: 1, kind: providers.KindUpstreamBadResponse},
		{name: "malformed event", status: 200, ctype: "text/event-stream", body: "data: {not json\n\n", kind: providers.KindUpstreamBadResponse},
		{name: "event over the cap", status: 200, ctype: "text/event-stream",
			body: "data: \"" + strings.Repeat("A", testMaxBytes+100) + "\"\n\n", kind: providers.KindUpstreamBadResponse},
		{name: "JSON answer despite stream", status: 200, ctype: "application/json",
			body: `{"created":1700000000,"data":[{"b64_json":` + b64(img) + `}]}`, images: 1},
		{name: "error status before the stream", status: 429, ctype: "application/json",
			body: `{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, kind: providers.KindUpstreamRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := sseServer(t, tc.status, tc.ctype, tc.body)
			got := 0
			res, details, err := a.Stream(context.Background(), req(), 2, func(p providers.Partial) {
				got++
				if p.Index != 0 || p.Width != 8 || !bytes.Equal(p.Data, img) {
					t.Errorf("partial %+v", p)
				}
			})
			if got != tc.partials {
				t.Errorf("%d partials, want %d", got, tc.partials)
			}
			if tc.kind != "" {
				if providers.KindOf(err) != tc.kind {
					t.Fatalf("error %v (%s), want %s", err, providers.KindOf(err), tc.kind)
				}
				if strings.Contains(fmt.Sprint(err), testKey) {
					t.Fatal("the key leaked")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Images) != tc.images || !bytes.Equal(bytesOf(t, res.Images[0]), img) {
				t.Fatalf("result %+v", res)
			}
			if strings.HasPrefix(tc.ctype, "text/event-stream") {
				if len(details) != 1 || details[0].Usage == nil || details[0].Usage.TotalTokens != 12 || details[0].Usage.InputTextTokens != 5 {
					t.Fatalf("details %+v", details)
				}
			}
		})
	}
}
