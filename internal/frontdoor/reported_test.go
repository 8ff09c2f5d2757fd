package frontdoor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

// TestReportedFieldsPassedThrough: OpenAI's top-level background, output_format, quality, size
// and usage reach an openai-go client when the upstream reported them. With size and quality
// "auto" (the SDK's defaults) they say what the upstream made; the sandbox reports nothing, and
// the response has none of them.
func TestReportedFieldsPassedThrough(t *testing.T) {
	g := openAIGateway(t, fake.Options{})
	c := sdk(g, g.Key)
	ctx := context.Background()

	t.Run("gpt-image-1 auto", func(t *testing.T) {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "oa/gpt-image-1", Prompt: "a red fox",
			Size: openai.ImageGenerateParamsSizeAuto, Quality: openai.ImageGenerateParamsQualityAuto, N: openai.Int(2)})
		if err != nil {
			t.Fatal(err)
		}
		raw := res.RawJSON()
		if len(res.Data) != 2 || res.Quality != "high" || res.Size != "1024x1024" || res.Background != "opaque" || res.OutputFormat != "png" {
			t.Fatalf("response %s", short(raw, res.Data))
		}
		u := res.Usage
		// The fake's usage: 4160 output tokens per 1024x1024 high-quality image, a quarter of the
		// prompt's length in text tokens, no input images.
		if !res.JSON.Usage.Valid() || u.OutputTokens != 2*4160 || u.InputTokens != int64(len("a red fox")/4) ||
			u.InputTokensDetails.TextTokens != u.InputTokens || u.InputTokensDetails.ImageTokens != 0 ||
			u.TotalTokens != u.InputTokens+u.OutputTokens {
			t.Fatalf("usage %s", short(raw, res.Data))
		}
		// OpenAI's order: the reported fields follow "data".
		if i, j := strings.Index(raw, `"data"`), strings.Index(raw, `"background"`); i < 0 || j < i {
			t.Fatalf("response %s", short(raw, res.Data))
		}
	})

	t.Run("gpt-image-1 edit with settings", func(t *testing.T) {
		res, err := c.Images.Edit(ctx, openai.ImageEditParams{Model: "oa/gpt-image-1", Prompt: "a hat",
			Image:   openai.ImageEditParamsImageUnion{OfFile: openai.File(strings.NewReader(string(pngOf(t, 64, 64, false))), "src.png", "image/png")},
			Quality: openai.ImageEditParamsQualityLow, Size: openai.ImageEditParamsSize1536x1024, Background: openai.ImageEditParamsBackgroundTransparent,
			OutputFormat: openai.ImageEditParamsOutputFormatWebP})
		if err != nil {
			t.Fatal(err)
		}
		if res.Quality != "low" || res.Size != "1536x1024" || res.Background != "transparent" || res.OutputFormat != "webp" ||
			res.Usage.OutputTokens != 408 || res.Usage.InputTokensDetails.ImageTokens == 0 {
			t.Fatalf("response %s", short(res.RawJSON(), res.Data))
		}
	})

	t.Run("dall-e-3 reports nothing", func(t *testing.T) {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "oa/dall-e-3", Prompt: "a red fox"})
		if err != nil {
			t.Fatal(err)
		}
		assertNoReported(t, res)
	})

	t.Run("sandbox", func(t *testing.T) {
		res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "sandbox-image", Prompt: "a red fox",
			Size: openai.ImageGenerateParamsSize256x256, N: openai.Int(2)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 {
			t.Fatalf("response %s", short(res.RawJSON(), res.Data))
		}
		assertNoReported(t, res)
	})
}

func assertNoReported(t *testing.T, res *openai.ImagesResponse) {
	t.Helper()
	j := res.JSON
	if j.Usage.Valid() || j.Quality.Valid() || j.Size.Valid() || j.Background.Valid() || j.OutputFormat.Valid() {
		t.Fatalf("reported fields where the upstream reported none: %s", short(res.RawJSON(), res.Data))
	}
}

// TestReportedFanOut: n fanned out over several calls to an OpenAI-compatible host that reports
// OpenAI's fields: the usage is the sum of the calls', a setting is given only when every call
// reported the same.
func TestReportedFanOut(t *testing.T) {
	img := base64.StdEncoding.EncodeToString(pngOf(t, 32, 32, false))
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		quality := "high"
		if calls.Add(1)%2 == 0 {
			quality = "medium"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"created":1700000000,"data":[{"b64_json":"`+img+`"}],"background":"opaque","output_format":"png",`+
			`"quality":"`+quality+`","size":"32x32",`+
			`"usage":{"input_tokens":10,"input_tokens_details":{"text_tokens":7,"image_tokens":3},"output_tokens":100,"total_tokens":110}}`)
	}))
	t.Cleanup(srv.Close)
	g := gatewaytest.Start(t, gatewaytest.Options{Configure: func(c *config.Config) {
		c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, strings.TrimPrefix(srv.URL, "http://"))
		c.Providers = append(c.Providers, config.ChannelConfig{Name: "cx", Type: "openai-compatible", BaseURL: srv.URL + "/v1",
			APIKey: "sk-compat-test", Options: map[string]string{"max_n": "1"}})
	}})
	c := sdk(g, g.Key)
	ctx := context.Background()

	res, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Model: "cx/flux-schnell", Prompt: "a red fox", N: openai.Int(3),
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
	if err != nil {
		t.Fatal(err)
	}
	raw := res.RawJSON()
	if n := calls.Load(); n != 3 || len(res.Data) != 3 {
		t.Fatalf("%d calls, %d images", n, len(res.Data))
	}
	u := res.Usage
	if u.InputTokens != 30 || u.InputTokensDetails.TextTokens != 21 || u.InputTokensDetails.ImageTokens != 9 ||
		u.OutputTokens != 300 || u.TotalTokens != 330 {
		t.Fatalf("usage %s", short(raw, res.Data))
	}
	if res.JSON.Quality.Valid() || res.Background != "opaque" || res.OutputFormat != "png" || res.Size != "32x32" {
		t.Fatalf("settings %s", short(raw, res.Data))
	}

	// Streamed, the calls' settings come on each completed event (the quality of the call that
	// made it) and each call's usage once, so the events' usages add up to the response's.
	s := c.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Model: "cx/flux-schnell", Prompt: "a red fox", N: openai.Int(2)})
	var qualities []string
	var total int64
	for s.Next() {
		ev := s.Current()
		if ev.Type != "image_generation.completed" {
			t.Fatalf("event %s", ev.Type)
		}
		qualities = append(qualities, ev.Quality)
		if ev.JSON.Usage.Valid() {
			total += ev.Usage.TotalTokens
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(qualities) != 2 || total != 220 || (qualities[0] != "high" && qualities[0] != "medium") || qualities[0] == qualities[1] {
		t.Fatalf("qualities %v, total tokens %d", qualities, total)
	}
}

// TestReportedStreamedWithoutPartials: a gpt-image stream without partial images is not
// streamed upstream; its completed events carry what the upstream reported (the quality it
// chose for "auto", not "auto") and the call's usage once, on the last of its images.
func TestReportedStreamedWithoutPartials(t *testing.T) {
	g := openAIGateway(t, fake.Options{})
	c := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(g.Key), option.WithMaxRetries(0))
	s := c.Images.GenerateStreaming(context.Background(), openai.ImageGenerateParams{Model: "oa/gpt-image-1", Prompt: "a red fox",
		N: openai.Int(2), Quality: openai.ImageGenerateParamsQualityAuto, Size: openai.ImageGenerateParamsSizeAuto})
	var events []openai.ImageGenStreamEventUnion
	for s.Next() {
		events = append(events, s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events", len(events))
	}
	for i, ev := range events {
		if ev.Type != "image_generation.completed" || ev.Quality != "high" || ev.Size != "1024x1024" || ev.Background != "opaque" ||
			ev.OutputFormat != "png" || ev.JSON.Usage.Valid() != (i == 1) {
			t.Fatalf("event %d: %s", i, strings.ReplaceAll(ev.RawJSON(), ev.B64JSON, "…"))
		}
	}
	if u := events[1].Usage; u.OutputTokens != 2*4160 || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Fatalf("usage %+v", u)
	}
}

// short is a response's JSON with its images elided.
func short(raw string, data []openai.Image) string {
	for _, d := range data {
		if d.B64JSON != "" {
			raw = strings.ReplaceAll(raw, d.B64JSON, "…")
		}
	}
	var v any
	if json.Unmarshal([]byte(raw), &v) == nil {
		b, _ := json.Marshal(v)
		return string(b)
	}
	return raw
}
