// Package b64json reads upstream answers that carry images as base64 strings (OpenAI's
// "b64_json" and its kin) in one pass, without decoding the images: Split sets the large strings
// aside so that encoding/json reads only the small rest of the answer, and Parse checks a string
// is an image's base64 text and keeps that text, to be written to a b64_json client as it came.
//
// encoding/json reading a 2 MB answer scans it twice (checkValid, then the decoder) at a few
// hundred MB/s and copies the string; Split finds string ends with bytes.IndexByte and copies
// only what is not an image, and Parse checks the text eight bytes at a time
// (providers.ValidBase64).
package b64json

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/imagegw/imagegw/internal/jsonscan"
	"github.com/imagegw/imagegw/providers"
)

// Split finds the string values of the object members named name anywhere in the JSON document
// body (names matched as encoding/json matches them to a field: bytes.EqualFold) and returns
// body with each such string replaced by its index, a JSON number, and the strings themselves,
// quotes included, as slices of body. A caller decodes the small shadow with encoding/json into
// types whose field for name takes the index (Ref) and resolves it against strs.
//
// ok is false when Split cannot do this safely, and the caller then decodes body itself: a
// member of that name whose value is neither a string nor null (its index would be ambiguous),
// a member name written with escapes that unescapes to name, or a string that never ends.
// Split does not otherwise validate body: the shadow keeps every other byte, so encoding/json
// finds whatever is wrong with it.
func Split(body []byte, name string) (shadow []byte, strs [][]byte, ok bool) {
	last, i := 0, 0
	for {
		q := bytes.IndexByte(body[i:], '"')
		if q < 0 {
			break
		}
		start := i + q
		end := jsonscan.StringEnd(body, start)
		if end < 0 {
			return nil, nil, false
		}
		j := jsonscan.SkipSpace(body, end+1)
		if j >= len(body) || body[j] != ':' { // a value, not a member name
			i = end + 1
			continue
		}
		key := body[start+1 : end]
		if bytes.IndexByte(key, '\\') >= 0 {
			var s string
			if json.Unmarshal(body[start:end+1], &s) == nil && strings.EqualFold(s, name) {
				return nil, nil, false
			}
			i = j + 1
			continue
		}
		if !bytes.EqualFold(key, []byte(name)) {
			i = j + 1
			continue
		}
		v := jsonscan.SkipSpace(body, j+1)
		switch {
		case v < len(body) && body[v] == '"':
			vend := jsonscan.StringEnd(body, v)
			if vend < 0 {
				return nil, nil, false
			}
			if shadow == nil {
				shadow = make([]byte, 0, min(len(body), 512))
			}
			shadow = append(shadow, body[last:v]...)
			shadow = strconv.AppendInt(shadow, int64(len(strs)), 10)
			strs = append(strs, body[v:vend+1])
			last, i = vend+1, vend+1
		case bytes.HasPrefix(body[v:], []byte("null")):
			i = v + 4
		default:
			return nil, nil, false
		}
	}
	if shadow == nil { // nothing set aside: the body is its own shadow
		return body, nil, true
	}
	return append(shadow, body[last:]...), strs, true
}

// Ref is the value of a member Split set aside: the index encoding/json reads from the shadow,
// or the member's own JSON value when the document was decoded without Split. Decode it with
// encoding/json, then Resolve it.
type Ref struct {
	raw []byte // the JSON value when it is not an index
	idx int    // 1 + the index, 0 when raw is set or nothing was read
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *Ref) UnmarshalJSON(raw []byte) error {
	if len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		n, err := strconv.Atoi(string(raw))
		if err != nil || n < 0 {
			return fmt.Errorf("b64json: bad index %s", raw)
		}
		r.idx = n + 1
		return nil
	}
	r.raw = append([]byte(nil), raw...) // encoding/json's buffer is not ours to keep
	return nil
}

// IsZero reports whether nothing was read into r.
func (r *Ref) IsZero() bool { return r.idx == 0 && r.raw == nil }

// Resolve returns the member's JSON value: strs[index] when it was set aside by Split, else the
// value itself ("null" when there was none).
func (r *Ref) Resolve(strs [][]byte) ([]byte, error) {
	switch {
	case r.idx > 0:
		if r.idx > len(strs) {
			return nil, errors.New("b64json: index out of range")
		}
		return strs[r.idx-1], nil
	case r.raw != nil:
		return r.raw, nil
	}
	return []byte("null"), nil
}

// Image is an image's base64 text read by Parse.
type Image struct {
	// Text is standard, padded base64 (providers.ValidBase64 holds): a slice of the JSON value
	// when it needed no change, else a new slice. Empty for null or an empty string.
	Text []byte
	// ContentType is the MIME type of a "data:<type>;base64," prefix, lower-cased, or "".
	ContentType string
}

// Options say what Parse accepts besides standard, padded base64.
type Options struct {
	// Unpadded accepts base64 without its '=' padding (Ark and Modelverse); the text is then
	// padded (a copy).
	Unpadded bool
}

// Parse reads a JSON value holding an image in base64: a string (escapes allowed), possibly a
// data URI ("data:image/png;base64,…", the prefix matched without regard to case), or null.
// Line breaks in the text (escaped \r and \n) are dropped, as encoding/base64 ignores them. The
// text is checked to be base64 without being decoded.
func Parse(value []byte, o Options) (Image, error) {
	if string(value) == "null" {
		return Image{}, nil
	}
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return Image{}, errors.New("b64_json is not a string")
	}
	s := value[1 : len(value)-1]
	if len(s) > 0 && providers.ValidBase64(s) {
		// The usual answer, in one pass: base64 holds no escape, and no data: prefix (':' is
		// not in its alphabet).
		return Image{Text: s}, nil
	}
	if bytes.IndexByte(s, '\\') >= 0 {
		var str string
		if err := json.Unmarshal(value, &str); err != nil {
			return Image{}, fmt.Errorf("b64_json is not a string: %w", err)
		}
		s = []byte(str)
		if bytes.ContainsAny(s, "\r\n") {
			s = bytes.ReplaceAll(bytes.ReplaceAll(s, []byte("\r"), nil), []byte("\n"), nil)
		}
	}
	var im Image
	if len(s) >= 5 && strings.EqualFold(string(s[:5]), "data:") {
		meta, payload, ok := bytes.Cut(s[5:], []byte(","))
		if !ok || len(meta) < len(";base64") || !strings.EqualFold(string(meta[len(meta)-len(";base64"):]), ";base64") {
			return Image{}, errors.New("b64_json has a data: prefix that is not base64")
		}
		im.ContentType = strings.ToLower(string(meta[:len(meta)-len(";base64")]))
		s = payload
	}
	if len(s) == 0 {
		return im, nil
	}
	if providers.ValidBase64(s) {
		im.Text = s
		return im, nil
	}
	if o.Unpadded && len(s)%4 > 1 && bytes.IndexByte(s, '=') < 0 {
		if p := padded(s); providers.ValidBase64(p) {
			im.Text = p
			return im, nil
		}
	}
	return Image{}, errors.New("b64_json is not valid base64")
}

// padded returns s with the '=' padding standard base64 has (a copy when it adds any).
func padded(s []byte) []byte {
	if len(s)%4 == 0 {
		return s
	}
	out := make([]byte, len(s), len(s)+3)
	copy(out, s)
	for len(out)%4 != 0 {
		out = append(out, '=')
	}
	return out
}
