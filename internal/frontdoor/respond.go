package frontdoor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/imagegw/imagegw/providers"
)

// item is one image of the response: base64 text or raw bytes to send as b64_json, or a URL.
type item struct {
	// b64 is the image's base64 text as the upstream sent it (providers.Output.B64), written
	// out as it is; data is raw bytes, encoded on the way out.
	b64           []byte
	data          []byte
	url           string
	revisedPrompt string
	seed          *int64
	size          string
	channel       string // the channel that made it
	// reported is what the upstream call that made it reported (shared by the images of a call).
	reported *providers.Reported
}

var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// framePool holds the buffers writeImages builds the JSON around the images in.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeImages writes the OpenAI-shaped images response. The JSON around the images is small and
// built first, so the response's length is known (Content-Length, no chunked encoding); then
// each image goes to the connection as it is: an upstream's base64 text unchanged (no decode
// and re-encode), raw bytes base64-encoded straight into the connection's buffer (the encoded
// form of an image is never held in memory as a whole).
// After "data" come OpenAI's top-level background, output_format, quality, size and usage, each
// only when the upstream calls behind the images reported it (see reportedOf).
func writeImages(w http.ResponseWriter, created int64, items []item) error {
	fp := framePool.Get().(*[]byte)
	defer func() { *fp = (*fp)[:0]; framePool.Put(fp) }()
	frame := (*fp)[:0]
	var cuts [8]int
	cut := cuts[:0] // where in frame each image's text goes
	total := 0

	frame = append(frame, `{"created":`...)
	frame = strconv.AppendInt(frame, created, 10)
	frame = append(frame, `,"data":[`...)
	for i, it := range items {
		if i > 0 {
			frame = append(frame, ',')
		}
		frame = append(frame, '{')
		if it.url != "" {
			frame = append(frame, `"url":`...)
			frame = appendString(frame, it.url)
		} else {
			frame = append(frame, `"b64_json":"`...)
			cut = append(cut, len(frame))
			if len(it.b64) > 0 {
				total += len(it.b64)
			} else {
				total += base64.StdEncoding.EncodedLen(len(it.data))
			}
			frame = append(frame, '"')
		}
		if it.revisedPrompt != "" {
			frame = append(frame, `,"revised_prompt":`...)
			frame = appendString(frame, it.revisedPrompt)
		}
		if it.seed != nil {
			frame = append(frame, `,"seed":`...)
			frame = strconv.AppendInt(frame, *it.seed, 10)
		}
		if it.size != "" {
			frame = append(frame, `,"size":`...)
			frame = appendString(frame, it.size)
		}
		frame = append(frame, '}')
	}
	frame = append(frame, ']')
	rep := reportedOf(items)
	for _, f := range [...][2]string{{"background", rep.Background}, {"output_format", rep.OutputFormat}, {"quality", rep.Quality}} {
		if f[1] != "" {
			frame = append(frame, `,"`+f[0]+`":`...)
			frame = appendString(frame, f[1])
		}
	}
	if !rep.Size.IsZero() {
		frame = append(frame, `,"size":`...)
		frame = appendString(frame, rep.Size.String())
	}
	if rep.Usage != nil {
		frame = append(frame, `,"usage":`...)
		frame = appendUsage(frame, rep.Usage)
	}
	frame = append(frame, "}\n"...)
	*fp = frame
	total += len(frame)

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(total))
	w.WriteHeader(http.StatusOK)
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()
	prev, k := 0, 0
	for _, it := range items {
		if it.url != "" {
			continue
		}
		bw.Write(frame[prev:cut[k]])
		prev = cut[k]
		k++
		if len(it.b64) > 0 {
			bw.Write(it.b64) // a large write goes past the buffer, straight to the connection
		} else {
			enc := base64.NewEncoder(base64.StdEncoding, bw)
			_, _ = enc.Write(it.data)
			_ = enc.Close()
		}
	}
	bw.Write(frame[prev:])
	return bw.Flush()
}

// reportedOf is what the upstream calls behind items reported together, each call counted once:
// their token usage summed (when every call reported one) and each setting where all of them
// reported the same (providers.CombineReported).
func reportedOf(items []item) providers.Reported {
	var calls []*providers.Reported
	for _, it := range items {
		if !slices.Contains(calls, it.reported) {
			calls = append(calls, it.reported)
		}
	}
	rs := make([]providers.Reported, len(calls))
	for i, r := range calls {
		if r != nil {
			rs[i] = *r
		}
	}
	return providers.CombineReported(rs...)
}

// writeUsage writes OpenAI's usage object.
func writeUsage(bw *bufio.Writer, u *providers.Usage) {
	var b [192]byte
	bw.Write(appendUsage(b[:0], u))
}

// appendUsage appends OpenAI's usage object.
func appendUsage(b []byte, u *providers.Usage) []byte {
	for _, f := range []struct {
		prefix string
		v      int64
	}{
		{`{"input_tokens":`, u.InputTokens},
		{`,"input_tokens_details":{"image_tokens":`, u.InputImageTokens},
		{`,"text_tokens":`, u.InputTextTokens},
		{`},"output_tokens":`, u.OutputTokens},
		{`,"total_tokens":`, u.TotalTokens},
	} {
		b = append(b, f.prefix...)
		b = strconv.AppendInt(b, f.v, 10)
	}
	return append(b, '}')
}

// writeString writes s as a JSON string without HTML escaping, so signed URLs keep a literal '&'
// (not "\u0026", which confuses people reading responses with curl).
func writeString(bw *bufio.Writer, s string) {
	var b [256]byte
	bw.Write(appendString(b[:0], s))
}

// appendString appends s as a JSON string as encoding/json writes it without HTML escaping.
// Plain printable ASCII (URLs, sizes, most prompts) is appended as it is; anything else goes
// through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s)
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
