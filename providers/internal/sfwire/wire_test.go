package sfwire

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/providers"
)

func TestSeedValue(t *testing.T) {
	cases := map[string]*int64{
		`9999999999`: ptr(9_999_999_999), `0`: ptr(0), `123`: ptr(123), `1e3`: ptr(1000), `4999999999.0`: ptr(4_999_999_999),
		`10000000000`: nil, `-1`: nil, `1.5`: nil, `null`: nil, `"42"`: ptr(42), `""`: nil,
	}
	for in, want := range cases {
		var r Response
		if err := json.Unmarshal([]byte(`{"seed":`+in+`}`), &r); err != nil {
			if want != nil {
				t.Errorf("%s: %v", in, err)
			}
			continue
		}
		got := r.SeedValue()
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Errorf("%s: got %v, want %v", in, deref(got), deref(want))
		}
	}
}

func ptr(v int64) *int64 { return &v }
func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestDecodeResponse(t *testing.T) {
	h := http.Header{"Content-Type": {"application/json"}}
	r, err := DecodeResponse("p", h, []byte(`{"images":[{"url":"https://x/y.png?a=1\u0026b=2"}],"timings":{"inference":123},"seed":5,"shared_id":"s"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Images[0].URL != "https://x/y.png?a=1&b=2" || r.Timings.Inference != 123 {
		t.Fatalf("%+v", r)
	}
	now := time.Unix(1000, 0)
	outs, err := r.Outputs("p", now, URLTTL, 10, 20)
	if err != nil || len(outs) != 1 || !outs[0].Expires.Equal(now.Add(time.Hour)) || *outs[0].Seed != 5 || outs[0].Width != 10 {
		t.Fatalf("%+v %v", outs, err)
	}
	for _, bad := range []struct {
		ct, body string
		kind     providers.Kind
	}{
		{"text/html", `<html>`, providers.KindUpstreamBadResponse},
		{"application/json", `{"images":[{"url":"x"}`, providers.KindUpstreamBadResponse},
		{"application/json", `{"images":[]}`, providers.KindUpstreamBadResponse},
		{"application/json", `{"images":[{"url":" "}]}`, providers.KindUpstreamBadResponse},
		{"application/json", `{"code":20015,"message":"seed: bad","data":null}`, providers.KindInvalidRequest},
		{"application/json", `{"code":50508,"message":"busy","data":null}`, providers.KindUpstreamUnavailable},
	} {
		_, err := DecodeResponse("p", http.Header{"Content-Type": {bad.ct}}, []byte(bad.body), "")
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Kind != bad.kind || pe.Provider != "p" {
			t.Errorf("%s %s: %v, want %s", bad.ct, bad.body, err, bad.kind)
		}
	}
}

func TestOutputsDataURIAndBadURL(t *testing.T) {
	r := &Response{Images: []ResponseImage{{URL: "data:image/png;base64,aGk="}}}
	outs, err := r.Outputs("p", time.Now(), URLTTL, 0, 0)
	if err != nil || string(outs[0].Data) != "hi" || outs[0].ContentType != "image/png" || outs[0].URL != "" || !outs[0].Expires.IsZero() {
		t.Fatalf("%+v %v", outs, err)
	}
	for _, u := range []string{"data:image/png;base64,!!", "data:image/png,raw", "javascript:alert(1)", "//host/x.png", "https://"} {
		r := &Response{Images: []ResponseImage{{URL: u}}}
		if _, err := r.Outputs("p", time.Now(), URLTTL, 0, 0); providers.KindOf(err) != providers.KindUpstreamBadResponse {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestEncodeRequestKeepsAmpersands(t *testing.T) {
	b, err := EncodeRequest(&Request{Model: "m", Prompt: "a & b <c>"})
	if err != nil || string(b) != `{"model":"m","prompt":"a & b <c>"}` {
		t.Fatalf("%s %v", b, err)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.siliconflow.cn/v1":  "https://api.siliconflow.cn/v1/images/generations",
		"https://api.siliconflow.cn/v1/": "https://api.siliconflow.cn/v1/images/generations",
		"http://127.0.0.1:9090/sf/v1":    "http://127.0.0.1:9090/sf/v1/images/generations",
		" https://api.yunyx.top/v1 ":     "https://api.yunyx.top/v1/images/generations",
	} {
		if got, err := Endpoint(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "api.siliconflow.cn/v1", "ftp://x/v1", "https://x/v1?k=1", "https://u:p@x/v1", "https:///v1", "https://u:p@x/%zz"} {
		if _, err := Endpoint(bad); err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("%q: error leaks the password: %v", bad, err)
		}
	}
}

func TestParamFromMessage(t *testing.T) {
	for msg, want := range map[string]string{
		"image_size: bad":                        "size",
		"body -> num_inference_steps: too big":   "steps",
		"batch_size is not supported by model x": "n",
		"model: Field required":                  "model",
		"for model m the image2 is invalid":      "image",
		"length of prompt_tokens exceeds max":    "",
		"Field required":                         "",
		"negative_prompt too long":               "negative_prompt",
		"'guidance_scale' must be <= 20":         "guidance_scale",
	} {
		if got := ParamFromMessage(msg); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}

func TestSizeAllowed(t *testing.T) {
	list := providers.SizeRule{Sizes: providers.MustSizes("1024x1024", "512x1024")}
	free := providers.SizeRule{MinSide: 256, MaxSide: 2048, MaxPixels: 2_359_296, Multiple: 8}
	fixed := providers.SizeRule{Fixed: providers.Size{W: 384, H: 384}}
	for _, c := range []struct {
		r    providers.SizeRule
		w, h int
		ok   bool
	}{
		{list, 1024, 1024, true}, {list, 1024, 512, false}, {list, 0, 0, false},
		{free, 1536, 1536, true}, {free, 1600, 1600, false}, {free, 2048, 1152, true}, {free, 2056, 1000, false},
		{free, 248, 1024, false}, {free, 1001, 1000, false},
		{fixed, 384, 384, true}, {fixed, 512, 512, false},
		{providers.SizeRule{}, 1024, 1024, false},
	} {
		if got := SizeAllowed(c.r, c.w, c.h); got != c.ok {
			t.Errorf("%+v %dx%d: %v", c.r, c.w, c.h, got)
		}
	}
}
