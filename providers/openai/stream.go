package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// The OpenAI adapter streams gpt-image generations and edits.
var _ providers.Streamer = (*Adapter)(nil)

// maxPartials is OpenAI's upper bound on partial_images (PROVIDERS.md §5.1).
const maxPartials = 3

// Streams reports whether req can be streamed: gpt-image generations and edits.
func (a *Adapter) Streams(req *providers.Request) bool {
	if familyOf(req.Model) != famGPTImage {
		return false
	}
	switch req.Operation {
	case providers.OpGenerate, "", providers.OpEdit:
		return true
	}
	return false
}

// Stream calls POST /images/generations or /images/edits with "stream": true and partial_images,
// reads OpenAI's server-sent events (PROVIDERS.md §5.5) and hands each partial image to onPartial
// as it arrives. The completed events make the Result (in their order) and its details. A host
// that answers JSON despite the stream flag is read as Generate or Edit would read it.
func (a *Adapter) Stream(ctx context.Context, req *providers.Request, partials int, onPartial func(providers.Partial)) (*providers.Result, []providers.StreamDetails, error) {
	if partials < 1 || partials > maxPartials {
		return nil, nil, a.c.inputError(providers.ParamError("partial_images", "partial_images must be between 1 and %d when streaming", maxPartials))
	}
	if !a.Streams(req) {
		return nil, nil, a.c.inputError(providers.UnsupportedParam("stream", "only gpt-image generations and edits stream"))
	}
	var (
		path, ct string
		size     int64
		body     func() io.Reader
	)
	if req.Operation == providers.OpEdit {
		mp, err := encodeEditStream(req, "", partials)
		if err != nil {
			return nil, nil, a.c.inputError(err)
		}
		path, ct, size, body = "/images/edits", mp.contentType, mp.size, mp.reader
	} else {
		b, err := encodeGenerateStream(req, openAIDialect, partials)
		if err != nil {
			return nil, nil, a.c.inputError(err)
		}
		path, ct, size, body = "/images/generations", "application/json", int64(len(b)), func() io.Reader { return bytes.NewReader(b) }
	}
	return a.c.stream(ctx, req, path, ct, size, body, partials, onPartial)
}

// streamEvent is the data of one of OpenAI's image streaming events (partial_image, completed,
// or an error event).
type streamEvent struct {
	Type              string          `json:"type"`
	B64JSON           b64Image        `json:"b64_json"`
	CreatedAt         flexTime        `json:"created_at"`
	Size              looseString     `json:"size"`
	Quality           looseString     `json:"quality"`
	Background        looseString     `json:"background"`
	OutputFormat      looseString     `json:"output_format"`
	PartialImageIndex *int            `json:"partial_image_index"`
	Usage             *usage          `json:"usage"`
	Error             json.RawMessage `json:"error"`
}

// reported is what the event reports, read as a plain answer's fields are (reportedOf).
func (e *streamEvent) reported() providers.Reported {
	return reportedOf(string(e.Background), string(e.OutputFormat), string(e.Quality), string(e.Size), e.Usage)
}

// detailsOf is a streamed image's share of what was reported.
func detailsOf(r providers.Reported) providers.StreamDetails {
	return providers.StreamDetails{Quality: r.Quality, Background: r.Background, OutputFormat: r.OutputFormat, Usage: r.Usage}
}

// isEventStream reports whether a Content-Type is text/event-stream.
func isEventStream(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// stream posts a streaming request and reads its events. Each event is capped at the channel's
// response cap, and the whole stream at that cap times (partials+1): every image comes at most
// partials+1 times.
func (c *client) stream(ctx context.Context, req *providers.Request, path, contentType string, size int64,
	body func() io.Reader, partials int, onPartial func(providers.Partial)) (_ *providers.Result, _ []providers.StreamDetails, err error) {
	defer func() { err = providers.ScrubError(err, c.apiKey) }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, path, contentType, "text/event-stream", size, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 || !isEventStream(resp.Header.Get("Content-Type")) {
		res, err := c.answer(ctx, req, resp, resultOptions{})
		return res, nil, err
	}
	reqID := providers.RequestID(resp.Header.Get("X-Request-Id"), c.apiKey)
	bad := func(format string, args ...any) error {
		return &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.name, Status: resp.StatusCode,
			Message: fmt.Sprintf(format, args...)}
	}
	total := c.maxBytes * int64(partials+1)
	lr := &io.LimitedReader{R: resp.Body, N: total + 1}
	sr := &sseReader{r: bufio.NewReaderSize(lr, 64<<10), max: c.maxBytes}
	final := &imagesResponse{}
	var (
		details []providers.StreamDetails
		reps    []providers.Reported // of the completed events, parallel to details
	)
	for {
		name, data, rerr := sr.next()
		if rerr != nil {
			switch {
			case errors.Is(rerr, io.EOF) && lr.N <= 0:
				return nil, nil, bad("the provider's stream exceeded %d bytes", total)
			case errors.Is(rerr, io.EOF):
			case errors.Is(rerr, errEventTooLarge):
				return nil, nil, bad("an event of the provider's stream exceeded %d bytes", c.maxBytes)
			case len(final.Data) > 0:
				// The connection broke after some images were complete: they are delivered.
				c.log.Debug("upstream stream cut short", zap.Error(rerr), zap.String("upstream_request_id", reqID))
			default:
				return nil, nil, providers.TransportError(ctx, c.name, fmt.Errorf("openai: read stream: %w", rerr))
			}
			break
		}
		if bytes.HasPrefix(data, []byte("[DONE]")) {
			break
		}
		var ev streamEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, nil, &providers.Error{Kind: providers.KindUpstreamBadResponse, Provider: c.name, Status: resp.StatusCode,
				Message: "an event of the provider's stream could not be decoded", Err: err}
		}
		if name == "error" || ev.Type == "error" || (len(ev.Error) > 0 && string(ev.Error) != "null") {
			return nil, nil, c.streamError(resp.Header, data)
		}
		kind := ev.Type
		if kind == "" {
			kind = name
		}
		switch {
		case strings.HasSuffix(kind, ".partial_image"):
			if len(ev.B64JSON.data) == 0 || onPartial == nil {
				continue
			}
			ctype := http.DetectContentType(ev.B64JSON.data)
			if !strings.HasPrefix(ctype, "image/") {
				continue // a preview that is not an image is dropped, not fatal
			}
			rep := ev.reported()
			p := providers.Partial{Data: ev.B64JSON.data, ContentType: ctype, StreamDetails: detailsOf(rep),
				Width: rep.Size.W, Height: rep.Size.H}
			if ev.PartialImageIndex != nil {
				p.Index = *ev.PartialImageIndex
			}
			onPartial(p)
		case strings.HasSuffix(kind, ".completed"):
			if len(final.Data) == 0 {
				final.Created, final.Size = ev.CreatedAt, ev.Size
			}
			final.Data = append(final.Data, imageItem{B64JSON: b64Field{data: ev.B64JSON.data}})
			rep := ev.reported()
			reps = append(reps, rep)
			details = append(details, detailsOf(rep))
		}
	}
	if len(final.Data) == 0 {
		return nil, nil, bad("the provider's stream ended before an image was complete")
	}
	res, err := toResult(c.name, final, req, resultOptions{now: time.Now()})
	if err != nil {
		return nil, nil, err
	}
	res.UpstreamRequestID = reqID
	res.Reported = providers.CombineReported(reps...)
	return res, details, nil
}

// streamError translates an error event: {"type":"error","error":{message,type,param,code}}
// (or the same fields flat). Its kind comes from its code and type as an HTTP answer's would.
func (c *client) streamError(h http.Header, data []byte) *providers.Error {
	ue, _ := parseErrorBody(data)
	status := http.StatusInternalServerError
	switch strings.ToLower(ue.Type) {
	case "invalid_request_error", "image_generation_user_error":
		status = http.StatusBadRequest
	case "rate_limit_error", "rate_limit_exceeded":
		status = http.StatusTooManyRequests
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if v := h.Get("Retry-After"); v != "" {
		hdr.Set("Retry-After", v)
	}
	e := classifyError(c.name, status, hdr, data, c.apiKey)
	if e.Kind == providers.KindUpstreamUnavailable {
		e.Message = "the provider failed while streaming"
	}
	return e
}

var errEventTooLarge = errors.New("server-sent event too large")

// sseReader reads server-sent events: "event:" and "data:" lines up to a blank line; several
// data lines are joined with '\n'; comments, id and retry are skipped. An event's data is at most
// max bytes.
type sseReader struct {
	r   *bufio.Reader
	max int64
}

// next returns the next event with data. At the end of the input it returns io.EOF (a last
// event without its blank line is still returned first).
func (s *sseReader) next() (name string, data []byte, err error) {
	var buf []byte
	hasData := false
	for {
		line, err := s.line(int64(len(buf)))
		if err != nil && !errors.Is(err, io.EOF) {
			return "", nil, err
		}
		eof := err != nil
		if len(line) > 0 {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				name = string(value)
			case "data":
				if hasData {
					buf = append(append(buf, '\n'), value...)
				} else {
					buf = value // line is fresh memory: no copy of a large image
				}
				hasData = true
			}
		}
		if len(line) == 0 || eof {
			if hasData {
				return name, buf, nil
			}
			if eof {
				return "", nil, io.EOF
			}
			name = ""
		}
	}
}

// line reads one line without its line ending; used is what the event already holds.
func (s *sseReader) line(used int64) ([]byte, error) {
	var line []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		if int64(len(line)+len(frag))+used > s.max+16 {
			return nil, errEventTooLarge
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, err
	}
}
