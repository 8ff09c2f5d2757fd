package sfwire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
)

// MaxSeed is the largest seed SiliconFlow and yunyx accept (0 … 9 999 999 999, more than an
// int32 holds; PROVIDERS.md §1.2, §4.2).
const MaxSeed int64 = 9_999_999_999

// URLTTL is how long the image URLs of both upstreams stay valid (PROVIDERS.md §1.3, §4.3).
const URLTTL = time.Hour

// Path is the generation endpoint, relative to a base URL that ends in the version ("/v1").
const Path = "/images/generations"

// Request is the JSON body of POST {base}/images/generations. Zero fields are omitted, so the
// upstream applies its own defaults. yunyx takes only Model, Prompt, ImageSize,
// PromptEnhancement and Seed.
type Request struct {
	Model             string   `json:"model"`
	Prompt            string   `json:"prompt"`
	NegativePrompt    string   `json:"negative_prompt,omitempty"`
	ImageSize         string   `json:"image_size,omitempty"`
	BatchSize         int      `json:"batch_size,omitempty"`
	Seed              *int64   `json:"seed,omitempty"`
	NumInferenceSteps int      `json:"num_inference_steps,omitempty"`
	GuidanceScale     *float64 `json:"guidance_scale,omitempty"`
	CFG               *float64 `json:"cfg,omitempty"`
	PromptEnhancement *bool    `json:"prompt_enhancement,omitempty"`
	Image             string   `json:"image,omitempty"`
	Image2            string   `json:"image2,omitempty"`
	Image3            string   `json:"image3,omitempty"`
}

// EncodeRequest marshals r without HTML escaping (a prompt's "&" stays "&"), so request bodies
// are byte-for-byte what the golden files show.
func EncodeRequest(r *Request) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Response is the success body: {"images":[{"url":…}],"timings":{"inference":…},"seed":…}.
// Unknown keys (such as shared_id) are ignored.
type Response struct {
	Images []ResponseImage `json:"images"`
	// Timings.Inference is a number of seconds; documented as a float, shown as an integer in
	// examples.
	Timings struct {
		Inference float64 `json:"inference"`
	} `json:"timings"`
	// Seed may exceed int32; it is kept as a number literal and read by SeedValue.
	Seed json.Number `json:"seed"`

	// Code and Message are set when an error envelope arrives with a 2xx status.
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
}

// ResponseImage is one entry of Response.Images.
type ResponseImage struct {
	URL string `json:"url"`
}

// SeedValue returns the seed the upstream reports, or nil when it is absent or not an integer in
// 0 … MaxSeed (a bad seed is not worth failing a paid generation over).
func (r *Response) SeedValue() *int64 {
	s := strings.TrimSpace(r.Seed.String())
	if s == "" {
		return nil
	}
	v, err := r.Seed.Int64()
	if err != nil {
		f, ferr := r.Seed.Float64()
		if ferr != nil || f != math.Trunc(f) || f < 0 || f > float64(MaxSeed) {
			return nil
		}
		v = int64(f)
	}
	if v < 0 || v > MaxSeed {
		return nil
	}
	return &v
}

// DecodeResponse reads a 2xx body. A non-JSON content type, malformed JSON, an answer without
// images or with an image that has no usable URL is a KindUpstreamBadResponse; an error envelope
// sent with a 2xx status is classified like an error answer.
func DecodeResponse(provider string, h http.Header, body []byte, secret string) (*Response, error) {
	if ct := h.Get("Content-Type"); ct != "" && !isJSONType(ct) {
		return nil, badResponse(provider, "the provider answered with something other than JSON",
			fmt.Errorf("decode response: content type %q", ct))
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, badResponse(provider, "the provider's answer was not valid JSON",
			fmt.Errorf("decode response: %w", err))
	}
	if len(r.Images) == 0 {
		if len(r.Code) > 0 || r.Message != "" {
			return nil, ParseError(provider, http.StatusOK, h, body, secret)
		}
		return nil, badResponse(provider, "the provider's answer carried no image",
			errors.New("decode response: no images"))
	}
	for i, im := range r.Images {
		if strings.TrimSpace(im.URL) == "" {
			return nil, badResponse(provider, "the provider's answer carried an image without a URL",
				fmt.Errorf("decode response: image %d has no url", i))
		}
	}
	return &r, nil
}

// Outputs converts the images of r into canonical outputs. now+ttl is when their URLs expire;
// width and height (zero when unknown) and the reported seed are set on every image, since the
// upstream reports one seed per call. An image "URL" that is a data: URI is decoded into bytes.
func (r *Response) Outputs(provider string, now time.Time, ttl time.Duration, width, height int) ([]providers.Output, error) {
	seed := r.SeedValue()
	out := make([]providers.Output, 0, len(r.Images))
	for i, im := range r.Images {
		o := providers.Output{Width: width, Height: height}
		if seed != nil {
			s := *seed
			o.Seed = &s
		}
		raw := strings.TrimSpace(im.URL)
		if strings.HasPrefix(raw, "data:") {
			data, ct, err := DecodeDataURI(raw)
			if err != nil {
				return nil, badResponse(provider, "the provider's answer carried an undecodable image",
					fmt.Errorf("decode image %d: %w", i, err))
			}
			o.Data, o.ContentType = data, ct
		} else {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, badResponse(provider, "the provider's answer carried an image URL that is not http(s)",
					fmt.Errorf("decode image %d: bad url", i))
			}
			o.URL = raw
			if ttl > 0 {
				o.Expires = now.Add(ttl)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// DecodeDataURI decodes "data:<type>;base64,<data>" and returns the bytes and the media type
// ("image/png" when the URI names none).
func DecodeDataURI(s string) ([]byte, string, error) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return nil, "", errors.New("not a data URI")
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, "", errors.New("data URI without a comma")
	}
	mt, isB64 := strings.CutSuffix(meta, ";base64")
	if !isB64 {
		return nil, "", errors.New("data URI is not base64")
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt == "" {
		mt = "image/png"
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, "", fmt.Errorf("data URI payload: %w", err)
	}
	return data, mt, nil
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func badResponse(provider, msg string, err error) *providers.Error {
	return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider, Message: msg, Err: err}
}

// SizeString renders a size as the upstream's image_size value, "WxH".
func SizeString(w, h int) string { return providers.Size{W: w, H: h}.String() }

// SizeAllowed reports whether w×h satisfies rule: one of its exact sizes, or within its bounds for
// a free-form rule. A rule with neither accepts nothing but its Fixed size.
func SizeAllowed(rule providers.SizeRule, w, h int) bool {
	if w <= 0 || h <= 0 {
		return false
	}
	if !rule.Fixed.IsZero() {
		return rule.Fixed.W == w && rule.Fixed.H == h
	}
	if len(rule.Sizes) > 0 {
		for _, s := range rule.Sizes {
			if s.W == w && s.H == h {
				return true
			}
		}
		return false
	}
	if !rule.FreeForm() {
		return false
	}
	switch {
	case rule.MinSide > 0 && (w < rule.MinSide || h < rule.MinSide),
		rule.MaxSide > 0 && (w > rule.MaxSide || h > rule.MaxSide),
		rule.MinPixels > 0 && w*h < rule.MinPixels,
		rule.MaxPixels > 0 && w*h > rule.MaxPixels,
		rule.Multiple > 0 && (w%rule.Multiple != 0 || h%rule.Multiple != 0):
		return false
	}
	return true
}
