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

// item is one image of the response: raw bytes to send as b64_json, or a URL.
type item struct {
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

// writeImages streams the OpenAI-shaped images response. Image bytes are base64-encoded straight
// into the connection's buffer: the encoded form of an image is never held in memory as a whole.
// After "data" come OpenAI's top-level background, output_format, quality, size and usage, each
// only when the upstream calls behind the images reported it (see reportedOf).
func writeImages(w http.ResponseWriter, created int64, items []item) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()

	bw.WriteString(`{"created":`)
	bw.WriteString(strconv.FormatInt(created, 10))
	bw.WriteString(`,"data":[`)
	for i, it := range items {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('{')
		if it.url != "" {
			bw.WriteString(`"url":`)
			writeString(bw, it.url)
		} else {
			bw.WriteString(`"b64_json":"`)
			enc := base64.NewEncoder(base64.StdEncoding, bw)
			_, _ = enc.Write(it.data)
			_ = enc.Close()
			bw.WriteByte('"')
		}
		if it.revisedPrompt != "" {
			bw.WriteString(`,"revised_prompt":`)
			writeString(bw, it.revisedPrompt)
		}
		if it.seed != nil {
			bw.WriteString(`,"seed":`)
			bw.WriteString(strconv.FormatInt(*it.seed, 10))
		}
		if it.size != "" {
			bw.WriteString(`,"size":`)
			writeString(bw, it.size)
		}
		bw.WriteByte('}')
	}
	bw.WriteByte(']')
	rep := reportedOf(items)
	for _, f := range [...][2]string{{"background", rep.Background}, {"output_format", rep.OutputFormat}, {"quality", rep.Quality}} {
		if f[1] != "" {
			bw.WriteString(`,"` + f[0] + `":`)
			writeString(bw, f[1])
		}
	}
	if !rep.Size.IsZero() {
		bw.WriteString(`,"size":`)
		writeString(bw, rep.Size.String())
	}
	if rep.Usage != nil {
		bw.WriteString(`,"usage":`)
		writeUsage(bw, rep.Usage)
	}
	bw.WriteString("}\n")
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
		bw.WriteString(f.prefix)
		bw.WriteString(strconv.FormatInt(f.v, 10))
	}
	bw.WriteByte('}')
}

// writeString writes s as a JSON string without HTML escaping, so signed URLs keep a literal '&'
// (not "\u0026", which confuses people reading responses with curl).
func writeString(bw *bufio.Writer, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
