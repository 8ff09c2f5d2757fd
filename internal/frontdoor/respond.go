package frontdoor

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// item is one image of the response: raw bytes to send as b64_json, or a URL.
type item struct {
	data          []byte
	url           string
	revisedPrompt string
	seed          *int64
	size          string
	channel       string // the channel that made it
}

var bufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writeImages streams the OpenAI-shaped images response. Image bytes are base64-encoded straight
// into the connection's buffer: the encoded form of an image is never held in memory as a whole.
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
	bw.WriteString("]}\n")
	return bw.Flush()
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
