package frontdoor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

// lastResponse keeps the last HTTP response an SDK got (its headers, and its trailers once the
// body was read).
type lastResponse struct {
	mu   sync.Mutex
	resp *http.Response
}

func (l *lastResponse) option() option.RequestOption {
	return option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(r)
		l.mu.Lock()
		l.resp = resp
		l.mu.Unlock()
		return resp, err
	})
}

func (l *lastResponse) get() *http.Response {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resp
}

// waitUsage polls the ledger for the event of a request.
func waitUsage(t *testing.T, g *gatewaytest.Gateway, requestID string) store.UsageEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := g.App.Store.ListUsage(context.Background(), store.UsageFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var found []store.UsageEvent
		for _, e := range evs {
			if e.RequestID == requestID {
				found = append(found, e)
			}
		}
		if len(found) > 1 {
			t.Fatalf("%d ledger events for request %s", len(found), requestID)
		}
		if len(found) == 1 {
			return found[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ledger event for request %s", requestID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decodeB64PNG(t *testing.T, s string) (w, h int) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, b)
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// TestStreamSandbox: an upstream that does not stream gives one completed event per image, once
// the image is ready, billed exactly like the same request without stream.
func TestStreamSandbox(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{})
	var last lastResponse
	c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0), last.option())
	ctx := context.Background()

	for _, n := range []int64{1, 3} {
		t.Run(fmt.Sprintf("generate n=%d", n), func(t *testing.T) {
			params := openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "a lighthouse at dusk", N: openai.Int(n), Size: "256x256",
				ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON}
			plain, err := c.Images.Generate(ctx, params)
			if err != nil || int64(len(plain.Data)) != n {
				t.Fatal(err)
			}
			plainResp := last.get()
			plainCost := plainResp.Header.Get("X-Imagegw-Cost")
			if plainCost == "" || plainCost == "0" {
				t.Fatalf("non-streaming cost %q", plainCost)
			}

			params.PartialImages = openai.Int(2) // the sandbox does not stream: no partial images
			s := c.Images.GenerateStreaming(ctx, params)
			var completed []openai.ImageGenCompletedEvent
			var raws []string
			for s.Next() {
				ev := s.Current()
				if ev.Type != "image_generation.completed" {
					t.Fatalf("event %s", ev.Type)
				}
				completed = append(completed, ev.AsImageGenerationCompleted())
				raws = append(raws, ev.RawJSON())
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			resp := last.get()
			if int64(len(completed)) != n {
				t.Fatalf("%d completed events, want %d", len(completed), n)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("Content-Type %q", ct)
			}
			for i, ev := range completed {
				if w, h := decodeB64PNG(t, ev.B64JSON); w != 256 || h != 256 {
					t.Fatalf("image %dx%d", w, h)
				}
				if ev.Size != "256x256" || ev.OutputFormat != "png" || ev.Quality != "auto" || ev.Background != "auto" || ev.CreatedAt == 0 {
					t.Errorf("event %d fields: size=%s format=%s quality=%s background=%s created=%d", i, ev.Size, ev.OutputFormat, ev.Quality, ev.Background, ev.CreatedAt)
				}
				if strings.Contains(raws[i], "partial_image_index") {
					t.Errorf("completed event with a partial_image_index")
				}
			}
			// Same cost, in the headers (no partial image went out first) and on the last event.
			if got := resp.Header.Get("X-Imagegw-Cost"); got != plainCost {
				t.Fatalf("streaming cost %q, non-streaming %q", got, plainCost)
			}
			want := `"imagegw":{"cost":"` + plainCost + `","currency":"` + plainResp.Header.Get("X-Imagegw-Currency") + `"}`
			if !strings.Contains(raws[len(raws)-1], want) || strings.Contains(strings.Join(raws[:len(raws)-1], ""), `"imagegw"`) {
				t.Fatalf("the last completed event does not carry %s", want)
			}
			// One ledger event each, with the same cost.
			pe, se := waitUsage(t, g, plainResp.Header.Get("X-Request-Id")), waitUsage(t, g, resp.Header.Get("X-Request-Id"))
			if se.Cost != pe.Cost || se.Cost.String() != plainCost || se.NDelivered != int(n) || se.Status != store.StatusOK {
				t.Fatalf("ledger: streamed %+v, plain %+v", se, pe)
			}
		})
	}

	t.Run("edit", func(t *testing.T) {
		src, mask := pngOf(t, 128, 128, false), pngOf(t, 128, 128, true)
		s := c.Images.EditStreaming(ctx, openai.ImageEditParams{
			Model: "sandbox-image", Prompt: "paint the left half",
			Image: openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "src.png", "image/png")},
			Mask:  openai.File(bytes.NewReader(mask), "mask.png", "image/png"),
		})
		n := 0
		for s.Next() {
			ev := s.Current()
			if ev.Type != "image_edit.completed" {
				t.Fatalf("event %s", ev.Type)
			}
			if w, h := decodeB64PNG(t, ev.B64JSON); w != 128 || h != 128 {
				t.Fatalf("edited image %dx%d", w, h)
			}
			n++
		}
		if s.Err() != nil || n != 1 {
			t.Fatalf("%d events, %v", n, s.Err())
		}
		if last.get().Header.Get("X-Imagegw-Cost") == "" {
			t.Fatal("no cost header")
		}
	})

	t.Run("failure before any event is an ordinary error", func(t *testing.T) {
		s := c.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x [sandbox:fail=upstream_unavailable]"})
		for s.Next() {
			t.Fatalf("event %s", s.Current().RawJSON())
		}
		var apiErr *openai.Error
		if !errors.As(s.Err(), &apiErr) || apiErr.StatusCode != 502 || apiErr.Code != "upstream_unavailable" {
			t.Fatalf("error %v", s.Err())
		}
		resp := last.get()
		if ev := waitUsage(t, g, resp.Header.Get("X-Request-Id")); ev.Cost != 0 || ev.Status != store.StatusFailed {
			t.Fatalf("ledger %+v", ev)
		}
	})

	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			p     openai.ImageGenerateParams
			param string
		}{
			{"url", openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x", ResponseFormat: openai.ImageGenerateParamsResponseFormatURL}, "response_format"},
			{"partial_images out of range", openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x", PartialImages: openai.Int(4)}, "partial_images"},
		} {
			s := c.Images.GenerateStreaming(ctx, tc.p)
			for s.Next() {
				t.Fatalf("%s: event", tc.name)
			}
			var apiErr *openai.Error
			if !errors.As(s.Err(), &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != tc.param {
				t.Fatalf("%s: %v", tc.name, s.Err())
			}
		}
		// partial_images without stream.
		_, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "x", PartialImages: openai.Int(1)})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "partial_images" {
			t.Fatalf("partial_images without stream: %v", err)
		}
	})
}

// openAIGateway starts a gateway with an OpenAI channel "oa" pointed at the strict OpenAI fake.
func openAIGateway(t *testing.T, o fake.Options) *gatewaytest.Gateway {
	t.Helper()
	srv := httptest.NewServer(fake.New(o))
	t.Cleanup(srv.Close)
	return gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, strings.TrimPrefix(srv.URL, "http://"))
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "oa", Type: "openai", BaseURL: srv.URL + "/v1",
			APIKey: config.Secret(fake.DefaultKey)})
	}})
}

// TestStreamOpenAIPartialImages: a gpt-image channel streams real partial images, relayed while
// the upstream is still working (the fake holds each completed event until the client has
// received that image's partial images), then the completed event; the cost comes in trailers
// and on the last event, and matches the ledger.
func TestStreamOpenAIPartialImages(t *testing.T) {
	received := make(chan struct{}, 16)
	var notRelayed atomic.Bool
	g := openAIGateway(t, fake.Options{StreamPause: func(ctx context.Context, ev string) {
		if !strings.HasSuffix(ev, ".completed") {
			return
		}
		for range 2 {
			select {
			case <-received:
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
				notRelayed.Store(true) // the client did not get the partial images while the upstream waited
				return
			}
		}
	}})
	t.Cleanup(func() {
		if notRelayed.Load() {
			t.Error("partial images were not relayed while the upstream was still streaming")
		}
	})
	var last lastResponse
	c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0), last.option())
	ctx := context.Background()

	t.Run("generate", func(t *testing.T) {
		s := c.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Model: "oa/gpt-image-1", Prompt: "a red fox",
			PartialImages: openai.Int(2), Quality: "low", Size: "1024x1024"})
		var order []string
		var final openai.ImageGenCompletedEvent
		var finalRaw string
		for s.Next() {
			ev := s.Current()
			switch v := ev.AsAny().(type) {
			case openai.ImageGenPartialImageEvent:
				order = append(order, fmt.Sprintf("p%d", v.PartialImageIndex))
				if w, h := decodeB64PNG(t, v.B64JSON); w != 1024 || h != 1024 {
					t.Fatalf("partial %dx%d", w, h)
				}
				if v.Size != "1024x1024" || v.Quality != "low" || v.Background != "opaque" || v.OutputFormat != "png" || v.CreatedAt == 0 {
					t.Fatalf("partial %s", strings.ReplaceAll(ev.RawJSON(), v.B64JSON, "…"))
				}
				if h := last.get().Header; h.Get("X-Imagegw-Cost") != "" {
					t.Fatal("a cost header went out before the cost was known")
				}
				received <- struct{}{}
			case openai.ImageGenCompletedEvent:
				order = append(order, "c")
				final, finalRaw = v, ev.RawJSON()
			default:
				t.Fatalf("event %s", ev.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(order, ",") != "p0,p1,c" {
			t.Fatalf("events %v", order)
		}
		if w, h := decodeB64PNG(t, final.B64JSON); w != 1024 || h != 1024 {
			t.Fatalf("final %dx%d", w, h)
		}
		if final.Usage.TotalTokens == 0 || final.Usage.OutputTokens == 0 || final.Quality != "low" || final.Background != "opaque" {
			t.Fatalf("completed %s", strings.ReplaceAll(finalRaw, final.B64JSON, "…"))
		}
		resp := last.get()
		cost := resp.Trailer.Get("X-Imagegw-Cost")
		if cost == "" || cost == "0" || !strings.Contains(finalRaw, `"imagegw":{"cost":"`+cost+`"`) {
			t.Fatalf("trailers %v; completed %s", resp.Trailer, strings.ReplaceAll(finalRaw, final.B64JSON, "…"))
		}
		if ev := waitUsage(t, g, resp.Header.Get("X-Request-Id")); ev.Cost.String() != cost || ev.NDelivered != 1 || ev.Channel != "oa" {
			t.Fatalf("ledger %+v, trailer cost %s", ev, cost)
		}
	})

	t.Run("edit", func(t *testing.T) {
		src := pngOf(t, 64, 64, false)
		s := c.Images.EditStreaming(ctx, openai.ImageEditParams{Model: "oa/gpt-image-1", Prompt: "a hat",
			Image:         openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(src), "src.png", "image/png")},
			PartialImages: openai.Int(2), Quality: "low", Size: "1024x1024"})
		var order []string
		for s.Next() {
			ev := s.Current()
			order = append(order, ev.Type)
			if ev.Type == "image_edit.partial_image" {
				received <- struct{}{}
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(order, ",") != "image_edit.partial_image,image_edit.partial_image,image_edit.completed" {
			t.Fatalf("events %v", order)
		}
	})

	t.Run("without partial images the upstream is not streamed", func(t *testing.T) {
		s := c.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Model: "oa/gpt-image-1", Prompt: "a red fox", Quality: "low"})
		n := 0
		for s.Next() {
			if s.Current().Type != "image_generation.completed" {
				t.Fatalf("event %s", s.Current().Type)
			}
			n++
		}
		if s.Err() != nil || n != 1 || last.get().Header.Get("X-Imagegw-Cost") == "" {
			t.Fatalf("%d events, %v, headers %v", n, s.Err(), last.get().Header)
		}
	})
}

// TestStreamFailureAfterPartials: the upstream's stream breaks after the partial images: the
// client gets an error event (the SDK's stream error) and nothing is billed.
func TestStreamFailureAfterPartials(t *testing.T) {
	g := openAIGateway(t, fake.Options{StreamPause: func(_ context.Context, ev string) {
		if strings.HasSuffix(ev, ".completed") {
			panic(http.ErrAbortHandler) // the upstream connection breaks
		}
	}})
	var last lastResponse
	c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0), last.option())
	s := c.Images.GenerateStreaming(context.Background(), openai.ImageGenerateParams{Model: "oa/gpt-image-1", Prompt: "a red fox",
		PartialImages: openai.Int(1), Quality: "low"})
	partials := 0
	for s.Next() {
		if s.Current().Type != "image_generation.partial_image" {
			t.Fatalf("event %s", s.Current().Type)
		}
		partials++
	}
	var se *ssestream.StreamError
	if !errors.As(s.Err(), &se) || se.Event.Type != "error" || !strings.Contains(string(se.Event.Data), `"type":"error","error":{"message":`) ||
		!strings.Contains(string(se.Event.Data), `"code":"upstream_unavailable"`) {
		t.Fatalf("stream error %v", s.Err())
	}
	if partials != 1 {
		t.Fatalf("%d partial images before the error", partials)
	}
	if ev := waitUsage(t, g, last.get().Header.Get("X-Request-Id")); ev.Cost != 0 || ev.NDelivered != 0 {
		t.Fatalf("ledger %+v", ev)
	}

	// On the wire: the partial image, then the error event; the cost "0" in the trailers.
	req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations", strings.NewReader(
		`{"model":"oa/gpt-image-1","prompt":"a red fox","stream":true,"partial_images":1,"quality":"low"}`))
	req.Header.Set("Authorization", "Bearer "+g.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	if resp.StatusCode != 200 || len(events) != 2 || !strings.HasPrefix(events[0], "event: image_generation.partial_image\ndata: {") ||
		!strings.HasPrefix(events[1], "event: error\ndata: {\"type\":\"error\",\"error\":{") {
		j := strings.Join(events, " | ")
		t.Fatalf("status %d, events %q", resp.StatusCode, j[:min(len(j), 300)])
	}
	if cost := resp.Trailer.Get("X-Imagegw-Cost"); cost != "0" || resp.Header.Get("X-Imagegw-Cost") != "" {
		t.Fatalf("trailers %v, headers %v", resp.Trailer, resp.Header)
	}
}
