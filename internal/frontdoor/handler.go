package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/catalog"
	"github.com/imagegw/imagegw/internal/httpx"
	"github.com/imagegw/imagegw/internal/imagestore"
	"github.com/imagegw/imagegw/internal/imaging"
	"github.com/imagegw/imagegw/internal/metrics"
	"github.com/imagegw/imagegw/internal/redact"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// Fetcher downloads an image URL or decodes a data URI through the SSRF-safe client.
type Fetcher interface {
	Fetch(ctx context.Context, rawURL string, maxBytes int64) ([]byte, string, error)
}

// Options wires a Handler.
type Options struct {
	Catalog *catalog.Catalog
	// Live, when set, is the catalog in force, read once per request instead of Catalog: a
	// configuration reload swaps it (see live.go).
	Live *catalog.Live
	Auth *auth.Authenticator
	// StoreTimeout bounds all of one request's waits on the store together (key lookup, budget
	// claim, free images): see store.WithDeadline. 0 means no request-wide bound.
	StoreTimeout time.Duration
	// Fetcher downloads client-supplied image URLs: it must not reach private addresses, not
	// even allow-listed ones (those are for upstreams).
	Fetcher Fetcher
	// OutputFetcher downloads provider-returned image URLs (for b64_json), through the same
	// client as the adapters; nil means Fetcher.
	OutputFetcher Fetcher
	Images        *imagestore.Store
	Metrics       *metrics.Metrics
	Logger        *zap.Logger
	// Redactor scrubs configured secrets from every error a client gets (nil: none).
	Redactor *redact.Redactor
	// Meter admits requests (rate limits, budget holds) and records their outcome; nil admits all.
	Meter Meter
	// Channels protects upstream accounts with per-channel limits; nil admits every call.
	Channels ChannelGate
	// Router orders a model's channels and keeps their health (nil: config order, no breaker).
	Router *router.Router
	// MaxQueueWait is how long a call may wait for a channel at its limits before the request
	// fails over or is refused (default 2s).
	MaxQueueWait time.Duration
	// PublicURL is the external base URL for hosted images; empty: the request's own host.
	PublicURL      string
	MaxN           int
	MaxImagePixels int
	MaxImageBytes  int64
	// MaxOutputBytes caps one provider image downloaded for b64_json.
	MaxOutputBytes int64
	// RehostProviderURLs hosts images a provider returns as URLs (downloaded with OutputFetcher)
	// for response_format=url, so the client's URL outlives the provider's (see rehost.go).
	RehostProviderURLs bool
	// MapNearest is the deployment default for nearest-value mapping.
	MapNearest bool
	// FanoutConcurrency bounds concurrent upstream calls of one request.
	FanoutConcurrency int
}

// Handler serves the OpenAI-compatible API.
type Handler struct {
	o Options
}

// New returns a Handler.
func New(o Options) *Handler {
	if o.MaxN <= 0 {
		o.MaxN = 10
	}
	if o.MaxImagePixels <= 0 {
		o.MaxImagePixels = 4096 * 4096
	}
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = 25 << 20
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = 64 << 20
	}
	if o.FanoutConcurrency <= 0 {
		o.FanoutConcurrency = 4
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Meter == nil {
		o.Meter = NopMeter{}
	}
	if o.MaxQueueWait <= 0 {
		o.MaxQueueWait = 2 * time.Second
	}
	if o.OutputFetcher == nil {
		o.OutputFetcher = o.Fetcher
	}
	return &Handler{o: o}
}

// Routes adds the API to r (paths start with /v1). They go into r's own tree rather than a
// mounted /v1 router: one routing step per request, and 0.5 KB less stack on every request
// waiting on its upstream.
func (h *Handler) Routes(r chi.Router) {
	r.Get("/v1/images/files/{name}", h.o.Images.ServeHTTP)
	r.Group(func(r chi.Router) {
		r.Use(h.authenticate)
		r.Get("/v1/models", h.listModels)
		r.Get("/v1/models/*", h.getModel)
		r.Post("/v1/images/generations", h.images(providers.OpGenerate, false))
		r.Post("/v1/images/edits", h.images(providers.OpEdit, true))
		r.Post("/v1/images/variations", h.images(providers.OpVariation, true))
		r.Post("/v1/images/remix", h.images(providers.OpRemix, true))
		r.Post("/v1/images/upscale", h.images(providers.OpUpscale, true))
		r.Post("/v1/images/describe", h.images(providers.OpDescribe, true))
		r.Post("/v1/images/reframe", h.images(providers.OpReframe, true))
		r.Post("/v1/images/replace-background", h.images(providers.OpReplaceBackground, true))
		r.Post("/v1/images/quote", h.quote)
	})
}

type keyCtx struct{}

// KeyFrom returns the authenticated key of the request.
func KeyFrom(ctx context.Context) *store.Key {
	k, _ := ctx.Value(keyCtx{}).(*store.Key)
	return k
}

func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h.o.StoreTimeout > 0 {
			ctx = store.WithDeadline(ctx, time.Now().Add(h.o.StoreTimeout))
		}
		k, err := h.o.Auth.Authenticate(ctx, r.Header.Get("Authorization"))
		if err != nil {
			h.fail(w, r.WithContext(ctx), err)
			return
		}
		InfoFrom(ctx).Update(func(i *Info) { i.KeyID = k.ID })
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, keyCtx{}, k)))
	})
}

// fail writes err and records it for the access log and metrics.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *HeaderError
	if errors.As(err, &he) {
		for k, vs := range he.Header {
			w.Header()[k] = vs
		}
	}
	pe := asError(err)
	if red := h.o.Redactor; red != nil && (red.Contains(pe.Message) || red.Contains(pe.Param) || red.Contains(pe.Code)) {
		c := *pe
		c.Message, c.Param, c.Code = red.String(pe.Message), red.String(pe.Param), red.String(pe.Code)
		pe = &c
	}
	InfoFrom(r.Context()).Update(func(i *Info) { i.ErrorKind = string(pe.Kind) })
	if h.o.Metrics != nil {
		h.o.Metrics.Errors.WithLabelValues(string(pe.Kind), string(pe.Kind.Fault())).Inc()
	}
	if pe.Kind.Fault() == providers.FaultGateway || pe.Kind.Fault() == providers.FaultProvider {
		h.o.Logger.Warn("request failed", zap.String("request_id", InfoFrom(r.Context()).RequestID),
			zap.String("kind", string(pe.Kind)), zap.Error(pe))
	}
	WriteError(w, pe)
}

// call is one image request on its way through the gateway.
type call struct {
	api     *apiRequest
	entry   *catalog.Entry
	key     *store.Key
	req     *providers.Request
	adjust  []Adjustment
	started time.Time
}

// prepare decodes, authorises and validates a request, and resolves its input images.
func (h *Handler) prepare(r *http.Request, op providers.Operation, multipart bool) (*call, error) {
	var ar *apiRequest
	var err error
	if multipart {
		ar, err = decodeMultipart(r, op, h.o.MaxImageBytes)
	} else {
		ar, err = decodeJSON(r, op, h.o.MaxImageBytes)
	}
	if err != nil {
		return nil, err
	}
	if ar.Model == "" {
		return nil, badParam("model", "Missing required parameter: 'model'. List models with GET /v1/models.")
	}
	e, err := h.currentCatalog().Lookup(ar.Model)
	if err != nil {
		return nil, &providers.Error{Kind: providers.KindModelNotFound, Param: "model",
			Message: fmt.Sprintf("The model '%s' does not exist or you do not have access to it. List models with GET /v1/models.", ar.Model)}
	}
	k := KeyFrom(r.Context())
	if !keyAllows(k, e.Name) {
		return nil, &providers.Error{Kind: providers.KindPermissionDenied, Param: "model",
			Message: fmt.Sprintf("This API key is not allowed to use the model '%s'.", e.Name)}
	}
	InfoFrom(r.Context()).Update(func(i *Info) { i.Model, i.Provider = e.Name, e.OwnedBy })
	nearest := h.o.MapNearest
	if k != nil && k.MapNearest != nil {
		nearest = *k.MapNearest
	}
	if v := r.Header.Get("X-Imagegw-Map-Nearest"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return nil, badParam("X-Imagegw-Map-Nearest", "The header X-Imagegw-Map-Nearest must be true or false.")
		}
		nearest = b
	}
	if ar.MapNearest != nil {
		nearest = *ar.MapNearest
	}
	images, mask, err := h.inspectUploads(ar)
	if err != nil {
		return nil, err
	}
	var src providers.Size
	if len(images) > 0 {
		src = providers.Size{W: images[0].Width, H: images[0].Height}
	}
	req, adj, err := validate(ar, e, h.o.MaxN, nearest, src)
	if err != nil {
		return nil, err
	}
	req.Images, req.Mask = images, mask
	return &call{api: ar, entry: e, key: k, req: req, adjust: adj, started: time.Now()}, nil
}

func keyAllows(k *store.Key, model string) bool {
	return k == nil || len(k.Models) == 0 || slices.Contains(k.Models, model)
}

// needsSource lists operations that work on a source image.
var needsSource = map[providers.Operation]bool{
	providers.OpEdit: true, providers.OpVariation: true, providers.OpRemix: true, providers.OpUpscale: true,
	providers.OpDescribe: true, providers.OpReframe: true, providers.OpReplaceBackground: true,
}

// inspectUploads inspects uploaded images (and the mask) from their headers: declared dimensions
// are checked against the pixel cap before anything is decoded. It is local work, done before
// admission.
func (h *Handler) inspectUploads(ar *apiRequest) ([]providers.Image, *providers.Image, error) {
	var images []providers.Image
	for _, u := range ar.Files {
		im, err := h.inspect(u.data, u.filename, u.field)
		if err != nil {
			return nil, nil, err
		}
		images = append(images, im)
	}
	if needsSource[ar.Op] && len(images) == 0 && len(ar.ImageRefs) == 0 {
		return nil, nil, badParam("image", "Missing required parameter: 'image' (a file part named 'image' or 'image[]').")
	}
	if ar.Mask == nil {
		return images, nil, nil
	}
	if ar.Op != providers.OpEdit {
		return nil, nil, unsupported("mask", "'mask' is only taken by /v1/images/edits.")
	}
	if len(images) == 0 {
		return nil, nil, badParam("image", "A mask needs an uploaded 'image' of the same size.")
	}
	m, err := h.inspect(ar.Mask.data, ar.Mask.filename, "mask")
	if err != nil {
		return nil, nil, err
	}
	if src := images[0]; m.Width != src.Width || m.Height != src.Height {
		return nil, nil, badParam("mask", "The mask is %dx%d but the image is %dx%d; they must be the same size.", m.Width, m.Height, src.Width, src.Height)
	}
	return images, &m, nil
}

// fetchRefs downloads reference images given as URLs or data URIs, through the SSRF-safe client
// with the image byte cap, and inspects them. It runs after admission, so a key over its limits
// cannot make the gateway fetch anything.
func (h *Handler) fetchRefs(ctx context.Context, ar *apiRequest, req *providers.Request) error {
	for _, ref := range ar.ImageRefs {
		if h.o.Fetcher == nil {
			return badParam("image", "Image URLs are not supported by this gateway.")
		}
		data, _, err := h.o.Fetcher.Fetch(ctx, ref, h.o.MaxImageBytes)
		if err != nil {
			return &providers.Error{Kind: providers.KindInvalidRequest, Param: "image",
				Message: "The image could not be fetched: " + fetchReason(err) + ".", Err: err}
		}
		im, err := h.inspect(data, "", "image")
		if err != nil {
			return err
		}
		req.Images = append(req.Images, im)
	}
	return nil
}

func fetchReason(err error) string {
	var se *httpx.StatusError
	switch {
	case errors.Is(err, httpx.ErrBlockedAddress):
		return "the address is not allowed"
	case errors.Is(err, httpx.ErrBlockedScheme):
		return "only http, https and data: URLs are accepted"
	case errors.Is(err, httpx.ErrTooLarge):
		return "it is too large"
	case errors.Is(err, httpx.ErrNotImage):
		return "it is not an image"
	case errors.Is(err, httpx.ErrBadDataURI):
		return "the data URI is malformed"
	case errors.Is(err, httpx.ErrTooManyRedirects):
		return "it redirects too often"
	case errors.Is(err, httpx.ErrTooSlow):
		return "it arrived too slowly"
	case errors.As(err, &se):
		return fmt.Sprintf("the server answered HTTP %d", se.StatusCode)
	}
	return "it could not be downloaded"
}

func (h *Handler) inspect(data []byte, filename, param string) (providers.Image, error) {
	info, err := imaging.Inspect(data, h.o.MaxImagePixels)
	if err != nil {
		if errors.Is(err, imaging.ErrTooManyPixels) {
			return providers.Image{}, badParam(param, "The %s is too large: %v.", param, err)
		}
		return providers.Image{}, badParam(param, "The %s is not a PNG, JPEG, WebP or GIF image.", param)
	}
	return providers.Image{Data: data, ContentType: info.ContentType, Filename: filename, Width: info.Width, Height: info.Height}, nil
}

// images serves an image operation. Its goroutine waits on the upstream inside run, with this
// closure's frame on its stack: admitting and answering are out of line (admitImages,
// respondImages) so that the frame stays small and a request in flight fits the 8 KB stack a
// goroutine starts with (BenchmarkInFlightFootprint's stackB/inflight).
func (h *Handler) images(op providers.Operation, multipart bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d, ok := h.o.Meter.(Doorman); ok {
			leave, err := d.Door(r.Context(), KeyFrom(r.Context()))
			if err != nil {
				h.fail(w, r, err)
				return
			}
			defer leave()
		}
		c, adm := h.admitImages(w, r, op, multipart)
		if c == nil {
			return
		}
		if c.streaming() { // server-sent events: stream.go
			h.streamImages(w, r, c, adm)
			return
		}
		out := h.run(r.Context(), c)
		defer out.release() // after the response is written: it may point into the answers
		h.respondImages(w, r, c, adm, out)
	}
}

// admitImages parses and admits an image request and fetches the images it refers to. A nil
// call means it was refused, and the refusal is written.
//
//go:noinline
func (h *Handler) admitImages(w http.ResponseWriter, r *http.Request, op providers.Operation, multipart bool) (*call, Ticket) {
	c, err := h.prepare(r, op, multipart)
	if err != nil {
		h.fail(w, r, err)
		return nil, nil
	}
	ctx := r.Context()
	a := c.admission()
	in := InfoFrom(ctx)
	a.RequestID, a.ClientRequestID = in.RequestID, in.ClientRequestID
	adm, err := h.o.Meter.Admit(ctx, a)
	if err != nil {
		h.fail(w, r, err)
		return nil, nil
	}
	if err := h.fetchRefs(ctx, c.api, c.req); err != nil {
		h.refsFailed(w, r, adm, err)
		return nil, nil
	}
	if !c.streaming() {
		c.api = nil // read no more: c.req says it all, and the request need not hold it while it waits
	}
	return c, adm
}

// refsFailed ends an admitted request whose input images could not be fetched: nothing was
// attempted, so nothing is charged.
//
//go:noinline
func (h *Handler) refsFailed(w http.ResponseWriter, r *http.Request, adm Ticket, err error) {
	receipt := adm.Finish(context.WithoutCancel(r.Context()), Outcome{Status: store.StatusFailed, ErrorKind: providers.KindOf(err), NotAttempted: true})
	receipt.setHeaders(w.Header())
	h.fail(w, r, err)
}

// respondImages bills what the upstream calls made and writes the answer.
//
//go:noinline
func (h *Handler) respondImages(w http.ResponseWriter, r *http.Request, c *call, adm Ticket, out *outcome) {
	items, convErr := h.convert(r.Context(), r, c, out)
	receipt, err := h.bill(r.Context(), r, c, adm, out, items, convErr)
	if err != nil {
		receipt.setHeaders(w.Header())
		h.fail(w, r, err)
		return
	}
	hdr := w.Header()
	receipt.setHeaders(hdr)
	if a := adjusted(c.adjust); a != "" {
		hdr.Set("X-Imagegw-Adjusted", a)
	}
	if out.describe != nil {
		writeDescriptions(w, out)
		return
	}
	if n := c.req.N; len(items) < n {
		hdr.Set("X-Imagegw-Partial", partial(n, len(items)))
	}
	if err := writeImages(w, out.created.Unix(), items); err != nil {
		h.o.Logger.Debug("client went away while the response was written", zap.Error(err))
	}
}

// writeDescriptions writes the answer of describe. It and partial are out of respondImages'
// line, which is deep in a request's stack.
//
//go:noinline
func writeDescriptions(w http.ResponseWriter, out *outcome) {
	type desc struct {
		Text string `json:"text"`
	}
	ds := make([]desc, len(out.describe))
	for i, t := range out.describe {
		ds[i] = desc{t}
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": out.created.Unix(), "descriptions": ds})
}

// partial is the X-Imagegw-Partial header of a request that got fewer images than it asked for.
//
//go:noinline
func partial(requested, delivered int) string {
	return fmt.Sprintf("requested=%d; delivered=%d", requested, delivered)
}

// bill bills and records the request, given the items convert made of what its upstream calls
// produced (a sibling of convert, not its caller: converting can download an image, deep in a
// request's stack). The charge is durable before anything is written. err is what the client
// gets instead when nothing can be delivered, or when the charge could not be recorded (nothing
// is delivered that was not billed).
func (h *Handler) bill(ctx context.Context, r *http.Request, c *call, adm Ticket, out *outcome, items []item, convErr error) (Receipt, error) {
	out.delivered, out.made = len(items), madeOf(items)
	failed := len(items) == 0 && out.describe == nil
	if failed && out.err == nil {
		out.err = convErr
		if out.err == nil {
			out.err = &providers.Error{Kind: providers.KindUpstreamBadResponse, Message: "the provider returned no image"}
		}
	}
	receipt := adm.Finish(context.WithoutCancel(ctx), out.outcome(c))
	h.observe(r, c, out)
	switch {
	case failed:
		return receipt, out.err
	case receipt.Err != nil:
		out.err = receipt.Err
		return receipt, receipt.Err
	}
	return receipt, nil
}

// adjusted is the X-Imagegw-Adjusted header of a request's adjustments ("" for none).
func adjusted(adj []Adjustment) string {
	parts := make([]string, len(adj))
	for i, a := range adj {
		parts[i] = a.String()
	}
	return strings.Join(parts, "; ")
}

// observe records metrics for a finished call.
func (h *Handler) observe(r *http.Request, c *call, out *outcome) {
	InfoFrom(r.Context()).Update(func(i *Info) {
		i.Images = out.delivered
		if out.channel != "" {
			i.Channel = out.channel
		}
	})
	if h.o.Metrics == nil {
		return
	}
	for _, a := range c.adjust {
		h.o.Metrics.Adjustments.WithLabelValues(a.Param).Inc()
	}
	if out.delivered > 0 {
		var mp float64
		if c.req.Width > 0 {
			mp = float64(c.req.Width*c.req.Height) / (1 << 20) * float64(out.delivered)
		}
		h.o.Metrics.Delivered(c.entry.Name, c.entry.OwnedBy, string(c.req.Operation), out.delivered, mp)
		if out.delivered < c.req.N {
			h.o.Metrics.PartialFanouts.WithLabelValues(c.entry.Name).Inc()
		}
	}
}

// convert turns upstream outputs into response items in the requested format: URLs downloaded
// for b64_json (provider URLs expire), bytes hosted for url. An image that cannot be converted
// is not delivered (and so not billed).
func (h *Handler) convert(ctx context.Context, r *http.Request, c *call, out *outcome) ([]item, error) {
	if len(out.images) == 0 {
		return nil, nil
	}
	items := make([]item, len(out.images))
	for i := range out.images {
		im, it := &out.images[i], &items[i]
		it.revisedPrompt, it.seed, it.channel, it.reported = im.RevisedPrompt, im.Seed, out.from[i], out.reported[i]
		// The size: what the provider reports, else the image's header (checkOutput), else (a
		// provider URL passed through unread) what was asked for.
		if im.Width > 0 && im.Height > 0 {
			it.size = providers.Size{W: im.Width, H: im.Height}.String()
		}
	}
	if len(items) > 1 {
		return h.convertMany(ctx, r, c, out, items)
	}
	// One image: on this goroutine. (convert is deep in a request's stack, and downloading an
	// image goes deeper: what only many images need is in convertMany, out of line.)
	if err := h.convertOne(ctx, r, c, &items[0], &out.images[0]); err != nil {
		h.conversionFailed(err)
		return items[:0], err
	}
	return items, nil
}

// convertMany converts the images of a request answered with several, at most
// FanoutConcurrency at once; those that fail are left out, and the first failure returned.
//
//go:noinline
func (h *Handler) convertMany(ctx context.Context, r *http.Request, c *call, out *outcome, items []item) ([]item, error) {
	errs := make([]error, len(out.images)) // nil: converted
	var wg sync.WaitGroup
	sem := make(chan struct{}, h.o.FanoutConcurrency)
	for i := range out.images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = h.convertOne(ctx, r, c, &items[i], &out.images[i])
		}()
	}
	wg.Wait()
	kept := items[:0]
	var firstErr error
	for i := range items {
		if errs[i] == nil {
			kept = append(kept, items[i])
		} else if firstErr == nil {
			firstErr = errs[i]
			h.conversionFailed(errs[i])
		}
	}
	return kept, firstErr
}

//go:noinline
func (h *Handler) conversionFailed(err error) {
	h.o.Logger.Warn("image conversion failed", zap.Error(err))
}

// convertOne makes it, whose fields from the answer convert has set, deliverable from the
// upstream's output im in the requested format (see convert); an error means it is not.
func (h *Handler) convertOne(ctx context.Context, r *http.Request, c *call, it *item, im *providers.Output) error {
	// The image's bytes and base64 text as converted here (im is the answer's, not to change; a
	// copy of it would be 0.2 KB of a frame deep in the request's stack).
	data, b64 := im.Data, im.B64
	if len(im.B64) > 0 && (c.req.ResponseFormat != "b64_json" || c.streaming()) {
		// The bytes are needed: the image is hosted (url), or streamed (events carry bytes).
		d, err := im.Bytes()
		if err != nil {
			return &providers.Error{Kind: providers.KindUpstreamBadResponse, Message: "the provider returned an image that is not valid", Err: err}
		}
		data, b64 = d, nil
	}
	if len(data) > 0 {
		if err := h.checkOutput(it, data); err != nil {
			return err
		}
	}
	var err error
	switch {
	case c.req.ResponseFormat == "b64_json" && len(b64) > 0:
		// The upstream's base64 text goes out as it came, checked from its head.
		if err := h.checkOutputB64(it, b64); err != nil {
			return err
		}
		it.b64 = b64
	case c.req.ResponseFormat == "b64_json" && len(data) > 0:
		it.data = data
	case c.req.ResponseFormat == "b64_json":
		data, _, err := h.o.OutputFetcher.Fetch(ctx, im.URL, h.o.MaxOutputBytes)
		if err != nil {
			return &providers.Error{Kind: providers.KindUpstreamBadResponse, Message: "an image could not be downloaded from the provider", Err: err}
		}
		if err := h.checkOutput(it, data); err != nil {
			return err
		}
		it.data = data
	case im.URL != "" && h.o.RehostProviderURLs:
		if it.url, err = h.rehost(ctx, r, it, im.URL); err != nil {
			return err
		}
	case im.URL != "":
		it.url = im.URL
	default:
		if it.url, err = h.host(ctx, r, data, im.ContentType); err != nil {
			return err
		}
	}
	if it.size == "" && c.req.Width > 0 {
		it.size = providers.Size{W: c.req.Width, H: c.req.Height}.String()
	}
	return nil
}

// checkOutput checks a provider's image from its header, without decoding it: it must be an
// image of a kind clients can read, within the pixel cap (a provider's decompression bomb is
// not delivered, nor billed).
// The item's size comes from the header when the provider did not say.
func (h *Handler) checkOutput(it *item, data []byte) error {
	info, err := imaging.Inspect(data, h.o.MaxImagePixels)
	if err != nil {
		return &providers.Error{Kind: providers.KindUpstreamBadResponse, Message: "the provider returned an image that is not valid or too large", Err: err}
	}
	if it.size == "" {
		it.size = providers.Size{W: info.Width, H: info.Height}.String()
	}
	return nil
}

// checkOutputB64 is checkOutput for an image kept as the upstream's base64 text (valid base64,
// the adapter checked): the header is decoded from the text's head only.
func (h *Handler) checkOutputB64(it *item, text []byte) error {
	info, err := imaging.InspectBase64(text, h.o.MaxImagePixels)
	if err != nil {
		return &providers.Error{Kind: providers.KindUpstreamBadResponse, Message: "the provider returned an image that is not valid or too large", Err: err}
	}
	if it.size == "" {
		it.size = providers.Size{W: info.Width, H: info.Height}.String()
	}
	return nil
}

// release gives back the buffers the upstream answers behind o were read into (their images'
// base64 text points into them: providers.Result.Release). Call it once the response is
// written.
func (o *outcome) release() {
	for _, r := range o.results {
		r.Release()
	}
	o.results = nil
}

func (h *Handler) baseURL(r *http.Request) string {
	if h.o.PublicURL != "" {
		return strings.TrimRight(h.o.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
