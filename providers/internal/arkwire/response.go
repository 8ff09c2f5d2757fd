package arkwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
	"github.com/imagegw/imagegw/providers/internal/b64json"
)

// Response is the part of a success body both upstreams send:
// {"created":<unix>,"data":[…],"error":{…}}. The usage object is not read; a vendor that wants
// more top-level fields decodes its own struct and copies these into a Response.
type Response struct {
	Created int64   `json:"created"`
	Data    []Image `json:"data"`
	// Error appears on a 200 in Ark's SDK types and in Modelverse's answers; it is treated like
	// an error answer when nothing else came.
	Error *ErrorBody `json:"error"`
	// Texts are the b64_json strings Decode set aside; the Data items' B64 refer to them.
	Texts Texts `json:"-"`
}

// Image is one data item: a URL or a base64 image, its size when the upstream says it, or the
// error of an image that failed (Seedream's groups, on either upstream).
type Image struct {
	URL     string     `json:"url"`
	B64JSON B64        `json:"b64_json"`
	Size    string     `json:"size"`
	Error   *ItemError `json:"error"`
}

// ItemError is data[i].error for an image that failed.
type ItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// B64 is a b64_json value: the image's base64 text, checked but not decoded, with the type of a
// "data:<type>;base64," prefix stripped from it (Modelverse always sends one). Decode sets the
// text aside from the rest of the answer (b64json.Split) and ToResult resolves it; a B64
// unmarshalled from a string by itself reads the string at once.
type B64 struct {
	// Text is standard, padded base64 (unpadded text is padded); empty for null or "".
	Text        []byte
	ContentType string
	ref         b64json.Ref
}

// UnmarshalJSON reads the index Decode left in the answer's place, or a string.
func (f *B64) UnmarshalJSON(raw []byte) error {
	if len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		return f.ref.UnmarshalJSON(raw)
	}
	img, err := b64json.Parse(raw, b64json.Options{Unpadded: true})
	if err != nil {
		return err
	}
	f.Text, f.ContentType = bytes.Clone(img.Text), img.ContentType // raw is encoding/json's
	return nil
}

// resolve reads the text Decode set aside for f, if it did.
func (f *B64) resolve(texts Texts) error {
	if f.ref.IsZero() {
		return nil
	}
	v, err := f.ref.Resolve(texts)
	if err != nil {
		return err
	}
	img, err := b64json.Parse(v, b64json.Options{Unpadded: true})
	if err != nil {
		return err
	}
	f.Text, f.ContentType, f.ref = img.Text, img.ContentType, b64json.Ref{}
	return nil
}

// Bytes is the image decoded.
func (f *B64) Bytes() ([]byte, error) {
	o := providers.Output{B64: f.Text}
	return o.Bytes()
}

// Texts are the b64_json strings Decode set aside, for ToResult (Response.Texts).
type Texts [][]byte

// Decode parses a success body into v (a *Response or a vendor's own struct) in one pass over
// its images: the b64_json strings are set aside (b64json.Split) and returned, for the
// Response's Texts, so encoding/json reads only the rest. A body that does not parse is a bad
// response. The texts may point into body.
func Decode(vendor, provider string, body []byte, v any) (Texts, error) {
	shadow, texts, ok := b64json.Split(body, "b64_json")
	if !ok {
		shadow, texts = body, nil
	}
	if err := json.Unmarshal(shadow, v); err != nil {
		return nil, decodeError(vendor, provider, err)
	}
	return texts, nil
}

func decodeError(vendor, provider string, err error) error {
	return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
		Message: "the provider's answer could not be read", Err: fmt.Errorf("%s: decode response: %w", vendor, err)}
}

// Hints is what the request tells the translation of its answer.
type Hints struct {
	// Want is the client's response_format: an item with both a URL and bytes gives the bytes
	// when it is "b64_json", else the URL.
	Want string
	// Seed is put on every image when it is not nil and not negative.
	Seed *int64
	// Size is the output size when the request fixes it; an item's own size wins.
	Size providers.Size
	// TTL is how long URLs stay valid, counted from created (or from now when it is absent).
	TTL time.Duration
}

// Failures is how a vendor classifies a success answer that carries no image.
type Failures struct {
	// Item classifies the code of the first failed item when every item failed.
	Item func(code string) *providers.Error
	// Body classifies an error envelope inside the answer. It returns the error and a note for
	// the log text, put right after the code (for example a request id).
	Body func(eb ErrorBody) (*providers.Error, string)
}

// ToResult converts a decoded success body. Items with an error are skipped; with no image left,
// the first failed item, else the body's error envelope, else "no image" is the error. Every error
// is a *providers.Error; the texts of the upstream go only into Err.
func ToResult(vendor, provider string, r *Response, h Hints, now time.Time, f Failures) (*providers.Result, error) {
	res := &providers.Result{}
	born := now
	if r.Created > 0 && r.Created < 1<<40 {
		res.Created = time.Unix(r.Created, 0).UTC()
		born = res.Created
	}
	for i := range r.Data {
		if err := r.Data[i].B64JSON.resolve(r.Texts); err != nil {
			return nil, decodeError(vendor, provider, fmt.Errorf("data[%d].b64_json: %w", i, err))
		}
	}
	var failed *ItemError
	for i, d := range r.Data {
		if d.Error != nil {
			if failed == nil {
				failed = d.Error
			}
			continue
		}
		out := providers.Output{Width: h.Size.W, Height: h.Size.H}
		if sz, err := providers.ParseSize(d.Size); err == nil {
			out.Width, out.Height = sz.W, sz.H
		}
		if h.Seed != nil && *h.Seed >= 0 {
			s := *h.Seed
			out.Seed = &s
		}
		hasBytes := len(d.B64JSON.Text) > 0
		switch {
		case d.URL != "" && !(hasBytes && h.Want == "b64_json"):
			u, err := url.Parse(d.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned an image URL that is not http(s)", Err: fmt.Errorf("%s: data[%d].url is not an absolute http(s) URL", vendor, i)}
			}
			out.URL = d.URL
			out.Expires = born.Add(h.TTL)
		case hasBytes:
			// The text is valid base64 (b64json.Parse); its head says what it is.
			head, err := providers.DecodeBase64Head(d.B64JSON.Text, 512)
			ct := http.DetectContentType(head)
			if err != nil || !strings.HasPrefix(ct, "image/") {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned image data that is not an image", Err: fmt.Errorf("%s: data[%d].b64_json sniffs as %s", vendor, i, ct)}
			}
			out.B64, out.ContentType = d.B64JSON.Text, ct
		default:
			continue
		}
		res.Images = append(res.Images, out)
	}
	if len(res.Images) > 0 {
		return res, nil
	}
	if failed != nil {
		e := f.Item(failed.Code)
		e.Err = fmt.Errorf("%s: every image failed, first with %s: %s", vendor, Clip(failed.Code), Clip(failed.Message))
		return nil, e
	}
	if r.Error != nil && (r.Error.Code != "" || r.Error.Message != "") {
		e, note := f.Body(*r.Error)
		e.Err = fmt.Errorf("%s: error in a 200 answer, %s%s: %s", vendor, Clip(r.Error.Code), note, Clip(r.Error.Message))
		return nil, e
	}
	return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
		Message: "the provider's answer carried no image", Err: fmt.Errorf("%s: response has %d data items and no image", vendor, len(r.Data))}
}
