package frontdoor

// Streaming: "stream": true on /v1/images/generations and /v1/images/edits answers server-sent
// events the way OpenAI's Images API does (PROVIDERS.md §5.5; the contract is openai-go's
// ImageGenStreamEventUnion and ImageEditStreamEventUnion):
//
//	event: image_generation.partial_image     (image_edit.partial_image for edits)
//	data: {"type":…,"b64_json":…,"created_at":…,"size":…,"quality":…,"background":…,"output_format":…,"partial_image_index":0}
//
//	event: image_generation.completed         (image_edit.completed), one per delivered image
//	data: {"type":…,"b64_json":…,"created_at":…,"size":…,"quality":…,"background":…,"output_format":…,"usage":{…}}
//
// Partial images (partial_images 1–3) come only from upstreams that stream them (an adapter that
// implements providers.Streamer and streams the call: OpenAI's gpt-image models); every other
// upstream makes the images as without stream, and each delivered image is one completed event.
// OpenAI's events carry no image index, so with n > 1 each image's completed event simply
// follows the previous one (in request order), as OpenAI sends them.
//
// Billing is the non-streaming path's: the request is admitted (rate limits, budget hold)
// before anything is sent, the upstream calls and their failover are the same, and the meter's
// Finish (the charge made durable) runs once every image is ready and before the first
// completed event is written. Only the images of completed events are billed.
//
// How the cost is reported: the response headers are held back until the first event. Without
// partial images that is the first completed event, written after Finish, so the headers are
// exactly the non-streaming ones (X-Imagegw-Cost, X-Imagegw-Currency, x-ratelimit-*,
// X-Imagegw-Partial). When partial images went out first, the headers left before the cost was
// known: they carry no cost, and the cost headers (with X-Imagegw-Partial) follow as HTTP
// trailers. In both cases the last completed event carries the request's total as an extension
// member "imagegw": {"cost": "0.01", "currency": "USD"} (the X-Imagegw-Cost value; SDKs keep
// unknown members), so a client that sees neither headers nor trailers still learns it.
//
// Failures: anything that fails before the first event is the usual JSON error envelope with
// its status (so an SDK raises its typed error). A failure after partial images were sent (every
// upstream call failed, or the charge could not be made durable) is an "error" event,
// {"type":"error","error":{"message","type","param","code"}}, which both SDKs raise as an error;
// nothing is billed for images that were not delivered.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/imaging"
	"github.com/imagegw/imagegw/providers"
)

// maxPartialImages is OpenAI's bound on partial_images.
const maxPartialImages = 3

// streamWriteTimeout bounds the write of one event: a client that stops reading cannot hold an
// upstream call (which hands partial images over as they arrive) for ever.
const streamWriteTimeout = 30 * time.Second

// checkStream validates stream and partial_images, at the end of validate. A stream carries
// images as b64_json only.
func checkStream(ar *apiRequest, req *providers.Request) error {
	if ar.PartialImages != nil {
		if p := *ar.PartialImages; p < 0 || p > maxPartialImages {
			return badParam("partial_images", "Invalid value for 'partial_images': %d. It must be between 0 and %d.", p, maxPartialImages)
		}
		if !ar.Stream {
			return badParam("partial_images", "'partial_images' is only taken with 'stream': true.")
		}
	}
	if !ar.Stream {
		return nil
	}
	if ar.Op != providers.OpGenerate && ar.Op != providers.OpEdit {
		return unsupported("stream", "Only /v1/images/generations and /v1/images/edits stream; omit 'stream'.")
	}
	if ar.ResponseFormat == "url" {
		return unsupported("response_format", "A streamed response carries images as b64_json; omit 'response_format' or send 'b64_json'.")
	}
	req.ResponseFormat = "b64_json"
	return nil
}

// streaming reports whether the request asked for a stream.
func (c *call) streaming() bool { return c.api != nil && c.api.Stream }

// streamImages answers an admitted request with stream: true (see the top of this file). It
// mirrors images() from the upstream calls on.
func (h *Handler) streamImages(w http.ResponseWriter, r *http.Request, c *call, adm Ticket) {
	ctx := r.Context()
	s := &sse{w: w, rc: http.NewResponseController(w), prefix: "image_generation", log: h.o.Logger}
	if c.req.Operation == providers.OpEdit {
		s.prefix = "image_edit"
	}
	defer s.done()
	s.adjusted = adjusted(c.adjust)
	details := &detailsByImage{m: map[*byte]providers.StreamDetails{}}
	run := c
	if p := c.api.PartialImages; p != nil && *p > 0 {
		run = h.withStreaming(c, *p, details, func(part providers.Partial) { h.writePartial(s, c, part) })
	}
	// The charge is durable before any completed event is written.
	out := h.run(ctx, run)
	items, convErr := h.convert(ctx, r, c, out)
	receipt, err := h.bill(ctx, r, c, adm, out, items, convErr)
	failed := err != nil
	hdr := http.Header{}
	receipt.setHeaders(hdr)
	if n := c.req.N; !failed && len(items) < n {
		hdr.Set("X-Imagegw-Partial", partial(n, len(items)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		for k, vs := range hdr {
			w.Header()[k] = vs
		}
		if failed {
			h.fail(w, r, err)
			return
		}
	} else {
		// The headers are gone: the cost follows as trailers.
		for k, vs := range hdr {
			for _, v := range vs {
				w.Header().Add(http.TrailerPrefix+k, v)
			}
		}
		if failed {
			h.writeStreamError(s, r, err)
			return
		}
	}
	var total *streamCost
	if v := receipt.Header.Get("X-Imagegw-Cost"); v != "" {
		total = &streamCost{Cost: v, Currency: receipt.Header.Get("X-Imagegw-Currency")}
	}
	created := out.created.Unix()
	for i, it := range items {
		d := details.get(it.data)
		if d == (providers.StreamDetails{}) {
			d = callDetails(items, i) // an upstream that did not stream this image
		}
		ev := streamEventOf(c, it.data, it.size, d)
		ev.createdAt, ev.revisedPrompt, ev.seed = created, it.revisedPrompt, it.seed
		if i == len(items)-1 {
			ev.cost = total
		}
		if !s.write(s.prefix+".completed", ev) {
			return
		}
	}
}

// withStreaming returns a copy of c whose routes stream through their adapter's
// providers.Streamer, asking for partials partial images per image and handing them to
// onPartial; routes whose adapter does not stream are unchanged.
func (h *Handler) withStreaming(c *call, partials int, details *detailsByImage, onPartial func(providers.Partial)) *call {
	e := *c.entry
	e.Routes = slices.Clone(c.entry.Routes)
	for i, rt := range e.Routes {
		if s, ok := rt.Provider.(providers.Streamer); ok {
			e.Routes[i].Provider = &streamingProvider{Provider: rt.Provider, s: s, partials: partials, on: onPartial, details: details}
		}
	}
	cc := *c
	cc.entry = &e
	return &cc
}

// streamingProvider calls a Streamer for one streamed request: Generate and Edit stream when
// the adapter can stream the call, and call the adapter as usual when it cannot.
type streamingProvider struct {
	providers.Provider
	s        providers.Streamer
	partials int
	on       func(providers.Partial)
	details  *detailsByImage
}

func (p *streamingProvider) Generate(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return p.call(ctx, req)
}

func (p *streamingProvider) Edit(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	return p.call(ctx, req)
}

func (p *streamingProvider) call(ctx context.Context, req *providers.Request) (*providers.Result, error) {
	if !p.s.Streams(req) {
		return providers.Do(ctx, p.Provider, req)
	}
	res, details, err := p.s.Stream(ctx, req, p.partials, p.on)
	if err == nil && res != nil {
		p.details.add(res, details)
	}
	return res, err
}

// detailsByImage keeps what a streaming upstream said about each final image (quality,
// background, output format, usage), keyed by the image's bytes (the same slice travels from
// the adapter's Result to the response item).
type detailsByImage struct {
	mu sync.Mutex
	m  map[*byte]providers.StreamDetails
}

func (d *detailsByImage) add(res *providers.Result, details []providers.StreamDetails) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, im := range res.Images {
		if i < len(details) && len(im.Data) > 0 {
			d.m[&im.Data[0]] = details[i]
		}
	}
}

func (d *detailsByImage) get(data []byte) providers.StreamDetails {
	if len(data) == 0 {
		return providers.StreamDetails{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[&data[0]]
}

// callDetails is what the call that made items[i] reported (providers.Reported), as a streamed
// upstream's details would say it: its settings on each of its images, its usage on the last
// of them, so the usages of the completed events add up to the calls'.
func callDetails(items []item, i int) providers.StreamDetails {
	r := items[i].reported
	if r == nil {
		return providers.StreamDetails{}
	}
	d := providers.StreamDetails{Quality: r.Quality, Background: r.Background, OutputFormat: r.OutputFormat}
	for _, it := range items[i+1:] {
		if it.reported == r {
			return d
		}
	}
	d.Usage = r.Usage
	return d
}

// writePartial relays a partial image as it arrives (from an upstream call's goroutine). A
// preview that is not a valid image within the pixel cap is dropped.
func (h *Handler) writePartial(s *sse, c *call, p providers.Partial) {
	info, err := imaging.Inspect(p.Data, h.o.MaxImagePixels)
	if err != nil {
		h.o.Logger.Debug("partial image dropped", zap.Error(err))
		return
	}
	size := providers.Size{W: info.Width, H: info.Height}.String()
	ev := streamEventOf(c, p.Data, size, p.StreamDetails)
	ev.createdAt, ev.partialIndex = time.Now().Unix(), &p.Index
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(s.prefix+".partial_image", ev)
}

// writeStreamError ends a started stream with an error event in OpenAI's shape. The error goes
// through fail (redaction, metrics, logs) into a buffer first. s.mu is held.
func (h *Handler) writeStreamError(s *sse, r *http.Request, err error) {
	rec := &errorRecorder{header: http.Header{}}
	h.fail(rec, r, err)
	var env envelope
	if json.Unmarshal(rec.body.Bytes(), &env) != nil {
		env.Error = apiError{Message: "The server had an error while processing your request.", Type: "server_error"}
	}
	data, _ := json.Marshal(struct {
		Type  string   `json:"type"`
		Error apiError `json:"error"`
	}{"error", env.Error})
	s.writeRaw("error", data)
}

// errorRecorder captures what fail writes.
type errorRecorder struct {
	header http.Header
	body   bytes.Buffer
}

func (e *errorRecorder) Header() http.Header         { return e.header }
func (e *errorRecorder) Write(b []byte) (int, error) { return e.body.Write(b) }
func (e *errorRecorder) WriteHeader(int)             {}

// streamEvent is one image event's data.
type streamEvent struct {
	data                              []byte
	createdAt                         int64
	size, quality, background, format string
	partialIndex                      *int
	usage                             *providers.StreamUsage
	revisedPrompt                     string
	seed                              *int64
	cost                              *streamCost
}

// streamCost is the request's total, on the last completed event.
type streamCost struct {
	Cost     string `json:"cost"`
	Currency string `json:"currency,omitempty"`
}

// streamEventOf fills an event's settings: what the upstream said (d: a streamed image's
// details, else what its call reported), else what was asked for ("auto" when nothing was), and
// the output format from the image itself.
func streamEventOf(c *call, data []byte, size string, d providers.StreamDetails) streamEvent {
	ev := streamEvent{data: data, size: size, usage: d.Usage,
		quality: firstOf(d.Quality, c.req.Quality, "auto"), background: firstOf(d.Background, c.req.Background, "auto"),
		format: firstOf(d.OutputFormat, formatOf(data), c.req.OutputFormat, "png")}
	if ev.size == "" {
		if info, err := imaging.Inspect(data, 0); err == nil {
			ev.size = providers.Size{W: info.Width, H: info.Height}.String()
		}
	}
	return ev
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// formatOf names an image's format as OpenAI's output_format does.
func formatOf(data []byte) string {
	ct := http.DetectContentType(data)
	switch ct {
	case "image/png":
		return "png"
	case "image/jpeg":
		return "jpeg"
	case "image/webp":
		return "webp"
	}
	return strings.TrimPrefix(ct, "image/")
}

// sse writes server-sent events. Headers go out with the first event. mu serialises writers
// (partial images arrive on upstream calls' goroutines).
type sse struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	rc     *http.ResponseController
	prefix string
	// adjusted is the X-Imagegw-Adjusted header, sent with the stream's headers.
	adjusted string
	started  bool
	broken   bool
	log      *zap.Logger
}

// start sends the headers. s.mu is held.
func (s *sse) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if s.adjusted != "" {
		h.Set("X-Imagegw-Adjusted", s.adjusted)
	}
	s.w.WriteHeader(http.StatusOK)
}

// write sends one image event; false when the client is gone. s.mu is held.
func (s *sse) write(name string, ev streamEvent) bool {
	return s.event(name, func(bw *bufio.Writer) { writeEventData(bw, name, ev) })
}

// writeEventData writes an image event's data: its JSON object.
func writeEventData(bw *bufio.Writer, name string, ev streamEvent) {
	bw.WriteString(`{"type":`)
	writeString(bw, name)
	// The image is base64-encoded straight into the buffer, as in writeImages.
	bw.WriteString(`,"b64_json":"`)
	enc := base64.NewEncoder(base64.StdEncoding, bw)
	_, _ = enc.Write(ev.data)
	_ = enc.Close()
	bw.WriteString(`","created_at":`)
	bw.WriteString(strconv.FormatInt(ev.createdAt, 10))
	for _, f := range [][2]string{{"size", ev.size}, {"quality", ev.quality}, {"background", ev.background}, {"output_format", ev.format}} {
		bw.WriteString(`,"` + f[0] + `":`)
		writeString(bw, f[1])
	}
	if ev.partialIndex != nil {
		bw.WriteString(`,"partial_image_index":`)
		bw.WriteString(strconv.Itoa(*ev.partialIndex))
	}
	if ev.usage != nil {
		bw.WriteString(`,"usage":`)
		writeUsage(bw, ev.usage)
	}
	if ev.revisedPrompt != "" {
		bw.WriteString(`,"revised_prompt":`)
		writeString(bw, ev.revisedPrompt)
	}
	if ev.seed != nil {
		bw.WriteString(`,"seed":`)
		bw.WriteString(strconv.FormatInt(*ev.seed, 10))
	}
	if ev.cost != nil {
		b, _ := json.Marshal(ev.cost)
		bw.WriteString(`,"imagegw":`)
		bw.Write(b)
	}
	bw.WriteByte('}')
}

// writeRaw sends an event whose data is already encoded. s.mu is held.
func (s *sse) writeRaw(name string, data []byte) bool {
	return s.event(name, func(bw *bufio.Writer) { bw.Write(data) })
}

// event sends one event, its data written by data; false when the client is gone. s.mu is held.
func (s *sse) event(name string, data func(*bufio.Writer)) bool {
	if s.broken {
		return false
	}
	s.start()
	s.deadline()
	bw := bufPool.Get().(*bufio.Writer)
	bw.Reset(s.w)
	defer func() { bw.Reset(nil); bufPool.Put(bw) }()
	bw.WriteString("event: " + name + "\ndata: ")
	data(bw)
	bw.WriteString("\n\n")
	return s.flush(bw)
}

func (s *sse) deadline() {
	if err := s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Debug("stream write deadline", zap.Error(err))
	}
}

func (s *sse) flush(bw *bufio.Writer) bool {
	err := bw.Flush()
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		s.broken = true
		s.log.Debug("client went away while the stream was written", zap.Error(err))
		return false
	}
	return true
}

// done clears the write deadline, so it does not outlive the response on a kept-alive
// connection.
func (s *sse) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started && !s.broken {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}
