package openai

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/openai/fake"
)

// TestReportedAgainstFake: gpt-image answers report what they did (with size and quality left
// "auto", the size and quality the fake chose), dall-e and the compatible fake report nothing.
func TestReportedAgainstFake(t *testing.T) {
	a, _, _ := openAIFake(t, fake.Options{}, nil)
	ctx := context.Background()

	res, err := a.Generate(ctx, &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1", Prompt: "a red fox",
		N: 2, Quality: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Reported
	if r.Background != "opaque" || r.OutputFormat != "png" || r.Quality != "high" || r.Size != (providers.Size{W: 1024, H: 1024}) {
		t.Fatalf("reported %+v", r)
	}
	u := r.Usage
	if u == nil || u.OutputTokens != 2*4160 || u.InputTokens != u.InputTextTokens+u.InputImageTokens ||
		u.TotalTokens != u.InputTokens+u.OutputTokens || u.InputTextTokens == 0 {
		t.Fatalf("usage %+v", u)
	}
	if s, q := r.Effective(&providers.Request{Quality: "auto"}); s != (providers.Size{W: 1024, H: 1024}) || q != "high" {
		t.Fatalf("effective %v %q", s, q)
	}

	res, err = a.Generate(ctx, &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1-mini", Prompt: "a red fox",
		Quality: "low", Width: 1536, Height: 1024, Background: "transparent", OutputFormat: "webp"})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Reported; r.Background != "transparent" || r.OutputFormat != "webp" || r.Quality != "low" ||
		r.Size.String() != "1536x1024" || r.Usage == nil || r.Usage.OutputTokens != 408 {
		t.Fatalf("reported %+v %+v", r, r.Usage)
	}

	src := pngImage(t, 64, 64, false)
	res, err = a.Edit(ctx, &providers.Request{Operation: providers.OpEdit, Model: "gpt-image-1", Prompt: "a hat",
		Images: []providers.Image{src}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Reported; r.Quality != "high" || r.Size.String() != "1024x1024" || r.Usage == nil || r.Usage.InputImageTokens == 0 {
		t.Fatalf("edit reported %+v %+v", r, r.Usage)
	}

	res, err = a.Generate(ctx, &providers.Request{Operation: providers.OpGenerate, Model: "dall-e-3", Prompt: "a red fox"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reported.IsZero() {
		t.Fatalf("dall-e-3 reported %+v", res.Reported)
	}
	if s, q := res.Reported.Effective(&providers.Request{Width: 1792, Height: 1024, Quality: "hd"}); s.String() != "1792x1024" || q != "hd" {
		t.Fatalf("effective without a report: %v %q", s, q)
	}

	c, _, _ := compatibleFake(t, nil)
	res, err = c.Generate(ctx, &providers.Request{Model: "flux-schnell", Prompt: "a red fox"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reported.IsZero() {
		t.Fatalf("compatible fake reported %+v", res.Reported)
	}
}

// TestReportedFromACompatibleHost: a compatible host that sends OpenAI's fields has them read;
// junk (even of the wrong JSON type) is dropped field by field, never failing the answer.
func TestReportedFromACompatibleHost(t *testing.T) {
	img := base64.StdEncoding.EncodeToString(pngImage(t, 8, 8, false).Data)
	for _, tc := range []struct {
		name, extra string
		want        string
	}{
		{"all", `"background":"opaque","output_format":"jpeg","quality":"medium","size":"1024x1536",` +
			`"usage":{"input_tokens":12,"input_tokens_details":{"text_tokens":12,"image_tokens":0},"output_tokens":1584,"total_tokens":1596}`,
			"opaque jpeg medium 1024x1536 &{12 0 12 1584 1596}"},
		{"none", ``, "   0x0 <nil>"},
		{"usage without details", `"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}`, "   0x0 &{3 0 0 4 7}"},
		{"auto and junk settings", `"background":"auto","output_format":"<b>png</b>","quality":"HIGH","size":"auto"`, "   0x0 <nil>"},
		{"long setting and bad size", `"quality":"` + "q" + fmt.Sprintf("%020d", 0) + `","size":"-5x3"`, "   0x0 <nil>"},
		{"negative usage", `"quality":"low","usage":{"input_tokens":-1,"output_tokens":4,"total_tokens":3}`, "  low 0x0 <nil>"},
		{"wrong types", `"quality":7,"size":[1,2],"usage":"lots"`, "   0x0 <nil>"},
		{"wrong types in usage", `"quality":"low","usage":{"input_tokens":"many","input_tokens_details":3}`, "  low 0x0 <nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"created":1700000000,"data":[{"b64_json":"` + img + `"}]`
			if tc.extra != "" {
				body += "," + tc.extra
			}
			body += "}"
			srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, body)
			}))
			c, err := NewCompatible(providers.Config{Name: "compat-test", BaseURL: srv.URL + "/v1", APIKey: testKey, HTTP: srv.Client(),
				MaxResponseBytes: testMaxBytes})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Generate(context.Background(), &providers.Request{Model: "flux-schnell", Prompt: "x"})
			if err != nil {
				t.Fatal(err)
			}
			r := res.Reported
			if got := fmt.Sprintf("%s %s %s %s %v", r.Background, r.OutputFormat, r.Quality, r.Size, r.Usage); got != tc.want {
				t.Fatalf("reported %q, want %q", got, tc.want)
			}
			if !r.Size.IsZero() && (res.Images[0].Width != r.Size.W || res.Images[0].Height != r.Size.H) {
				t.Fatalf("image size %dx%d, reported %v", res.Images[0].Width, res.Images[0].Height, r.Size)
			}
		})
	}
}

// TestReportedStreamed: a streamed call reports what its completed events said together, and
// each image's details are that image's event.
func TestReportedStreamed(t *testing.T) {
	a, _, _ := openAIFake(t, fake.Options{}, nil)
	res, details, err := a.Stream(context.Background(), &providers.Request{Operation: providers.OpGenerate, Model: "gpt-image-1",
		Prompt: "a red fox", N: 2, Quality: "medium"}, 1, func(providers.Partial) {})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Reported
	if r.Background != "opaque" || r.OutputFormat != "png" || r.Quality != "medium" || r.Size.String() != "1024x1024" || r.Usage == nil {
		t.Fatalf("reported %+v", r)
	}
	var sum providers.Usage
	for _, d := range details {
		if d.Usage == nil || d.Quality != "medium" {
			t.Fatalf("details %+v", d)
		}
		sum.InputTokens += d.Usage.InputTokens
		sum.InputTextTokens += d.Usage.InputTextTokens
		sum.OutputTokens += d.Usage.OutputTokens
		sum.TotalTokens += d.Usage.TotalTokens
	}
	if len(details) != 2 || *r.Usage != sum || sum.OutputTokens != 2*1056 {
		t.Fatalf("usage %+v, events' sum %+v", *r.Usage, sum)
	}
}

func TestCombineReported(t *testing.T) {
	u := func(in, out int64) *providers.Usage {
		return &providers.Usage{InputTokens: in, InputTextTokens: in, OutputTokens: out, TotalTokens: in + out}
	}
	sq := providers.Size{W: 1024, H: 1024}
	a := providers.Reported{Background: "opaque", OutputFormat: "png", Quality: "high", Size: sq, Usage: u(10, 100)}
	b := providers.Reported{Background: "opaque", OutputFormat: "png", Quality: "low", Size: sq, Usage: u(5, 50)}
	if got := providers.CombineReported(); !got.IsZero() {
		t.Fatalf("no reports: %+v", got)
	}
	got := providers.CombineReported(a, b, a)
	if got.Background != "opaque" || got.OutputFormat != "png" || got.Quality != "" || got.Size != sq ||
		*got.Usage != *u(25, 250) {
		t.Fatalf("combined %+v %+v", got, got.Usage)
	}
	if a.Usage.TotalTokens != 110 {
		t.Fatal("CombineReported changed its input")
	}
	if got := providers.CombineReported(a, providers.Reported{}); !got.IsZero() {
		t.Fatalf("with a call that reported nothing: %+v", got)
	}
	if got := providers.CombineReported(a); got.Quality != "high" || got.Usage == a.Usage || *got.Usage != *a.Usage {
		t.Fatalf("one report: %+v", got)
	}
}
