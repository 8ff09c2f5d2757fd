package arkwire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imagegw/imagegw/providers"
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

// B64 decodes a b64_json string straight into bytes (one copy, no intermediate string for the
// common unescaped case) and strips a "data:<type>;base64," prefix if there is one (Modelverse
// always sends one).
type B64 struct {
	Data        []byte
	ContentType string
}

// UnmarshalJSON decodes the base64 string.
func (f *B64) UnmarshalJSON(raw []byte) error {
	if string(raw) == "null" {
		return nil
	}
	var s []byte
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		s = raw[1 : len(raw)-1]
	} else {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return fmt.Errorf("b64_json is not a string: %w", err)
		}
		s = []byte(str)
	}
	ct, payload, err := stripDataURI(s)
	if err != nil {
		return err
	}
	if len(payload) == 0 {
		return nil
	}
	data, err := decodeBase64(payload)
	if err != nil {
		return err
	}
	f.Data, f.ContentType = data, ct
	return nil
}

// stripDataURI splits "data:image/png;base64,<payload>" into its MIME type and payload; a plain
// base64 string comes back unchanged with an empty type.
func stripDataURI(s []byte) (string, []byte, error) {
	if len(s) < 5 || !strings.EqualFold(string(s[:5]), "data:") {
		return "", s, nil
	}
	meta, payload, ok := bytes.Cut(s[5:], []byte(","))
	if !ok || !bytes.HasSuffix(bytes.ToLower(meta), []byte(";base64")) {
		return "", nil, fmt.Errorf("b64_json has a data: prefix that is not base64")
	}
	return strings.ToLower(string(meta[:len(meta)-len(";base64")])), payload, nil
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 && bytes.IndexByte(s, '=') < 0 {
		enc = base64.RawStdEncoding
	}
	dst := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(dst, s)
	if err != nil {
		return nil, fmt.Errorf("b64_json is not valid base64: %w", err)
	}
	return dst[:n], nil
}

// Decode parses a success body into v (a *Response or a vendor's own struct); a body that does
// not parse is a bad response.
func Decode(vendor, provider string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
			Message: "the provider's answer could not be read", Err: fmt.Errorf("%s: decode response: %w", vendor, err)}
	}
	return nil
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
		hasBytes := len(d.B64JSON.Data) > 0
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
			ct := http.DetectContentType(d.B64JSON.Data)
			if !strings.HasPrefix(ct, "image/") {
				return nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: provider,
					Message: "the provider returned image data that is not an image", Err: fmt.Errorf("%s: data[%d].b64_json sniffs as %s", vendor, i, ct)}
			}
			out.Data, out.ContentType = d.B64JSON.Data, ct
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
