package providers

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// Operation names what a request asks a provider to do.
type Operation string

// The operations the front door exposes. Generate is the only one every provider has.
const (
	OpGenerate          Operation = "generate"
	OpEdit              Operation = "edit"
	OpVariation         Operation = "variation"
	OpRemix             Operation = "remix"
	OpUpscale           Operation = "upscale"
	OpDescribe          Operation = "describe"
	OpReframe           Operation = "reframe"
	OpReplaceBackground Operation = "replace_background"
)

// Operations lists every operation in a stable order.
var Operations = []Operation{OpGenerate, OpEdit, OpVariation, OpRemix, OpUpscale, OpDescribe, OpReframe, OpReplaceBackground}

// Image is an input image. The front door has already fetched it (through the SSRF-safe client
// when the client gave a URL), checked its format and read its dimensions.
type Image struct {
	Data        []byte
	ContentType string // "image/png", "image/jpeg" or "image/webp"
	Filename    string
	Width       int
	Height      int
}

// DataURI returns the image as a data URI with a lower-case MIME type, the form JSON-only
// upstreams (SiliconFlow, Ark, Modelverse) take for reference images.
func (im Image) DataURI() string {
	ct := im.ContentType
	if ct == "" {
		ct = "image/png"
	}
	buf := make([]byte, 0, len("data:;base64,")+len(ct)+base64.StdEncoding.EncodedLen(len(im.Data)))
	buf = append(buf, "data:"...)
	buf = append(buf, ct...)
	buf = append(buf, ";base64,"...)
	buf = base64.StdEncoding.AppendEncode(buf, im.Data)
	return string(buf)
}

// Request is the canonical, provider-neutral form of an image request. Zero values mean "not
// given by the client": the adapter then sends nothing and the upstream applies its default.
type Request struct {
	Operation Operation
	// Model is the upstream model id (for example "black-forest-labs/FLUX.1-schnell"), already
	// resolved from the public name by the catalog.
	Model string

	Prompt         string
	NegativePrompt string
	// N is the number of images wanted from this call; the front door has already split a larger
	// request into calls of at most the model's MaxN.
	N int
	// Width and Height are the output size, validated against the model's size rule. Zero when the
	// client left the size to the model (or gave an aspect ratio instead).
	Width, Height int
	// AspectRatio is "W:H" when the client asked for a ratio rather than a size.
	AspectRatio string

	Quality           string
	Style             string
	Seed              *int64
	Steps             int
	GuidanceScale     *float64
	Strength          *float64
	PromptEnhancement *bool

	Background        string
	OutputFormat      string
	OutputCompression *int
	Moderation        string
	User              string

	// ResponseFormat is what the client wants ("url" or "b64_json"). It is a hint: an upstream that
	// can return either should return the wanted one to save a download; the front door converts
	// whatever comes back.
	ResponseFormat string

	// Images are the source images: the image to edit, vary, remix, upscale, describe or reframe,
	// or reference images for image-to-image generation.
	Images []Image
	// Mask marks the area to change in OpenAI's convention: fully transparent pixels (alpha 0) are
	// changed. Adapters whose upstream wants another convention convert it (see internal/imaging).
	Mask *Image

	// Extra holds extension fields the front door does not interpret (rendering_speed, style_type,
	// image_weight, resemblance, color_palette, ...). Adapters read the ones they know, and must
	// reject unknown ones with KindUnsupported naming the field rather than ignore them.
	Extra map[string]json.RawMessage
}

// Result is an upstream's answer in canonical form.
type Result struct {
	// Created is when the upstream made the images; zero means "now".
	Created time.Time
	Images  []Output
	// Descriptions answers OpDescribe.
	Descriptions []string
	// Withheld counts images the upstream generated but did not deliver (for example Ideogram's
	// is_image_safe=false items). They are not billed.
	Withheld int
	// UpstreamRequestID is the provider's id for the call, for logs and support tickets.
	UpstreamRequestID string
	// Reported is what the upstream said about the call besides its images (OpenAI's gpt-image
	// answers echo the settings they used and count tokens); zero when it said nothing, and then
	// left out of the Result's JSON form (adapters' golden files).
	Reported Reported `json:",omitzero"`

	// release gives back the pooled buffers the images' B64 point into (see Release).
	release []func()
}

// OnRelease registers fn to run on Release: an adapter whose images' B64 point into a pooled
// buffer (ReadResponse) gives it back this way.
func (r *Result) OnRelease(fn func()) { r.release = append(r.release, fn) }

// Release gives back the buffers the images' B64 text points into, for the next answer to
// reuse. Call it once, when nothing reads the images any more (the response is written);
// B64 must not be read after it. Not calling it is safe: the GC takes the buffers.
func (r *Result) Release() {
	if r == nil {
		return
	}
	for _, fn := range r.release {
		fn()
	}
	r.release = nil
}

// Reported is what an upstream said it did on a call: the settings it used and the tokens it
// counted. Each field is zero when the upstream did not report it. Adapters keep only
// well-formed values: a setting is a short lower-case word and never "auto" (which says
// nothing about what was done), a size is a real size, a usage has no negative count.
//
// Where a provider reports them, the size and quality are what it made (a request that left
// them "auto" gets the ones the upstream chose): Effective gives what a call was made at, for
// settlement.
type Reported struct {
	// Background is "transparent" or "opaque" (OpenAI).
	Background string
	// OutputFormat is the images' format: "png", "jpeg", "webp", ...
	OutputFormat string
	// Quality is the quality tier used: "low", "medium", "high" (gpt-image), "standard", "hd".
	Quality string
	// Size is the size of the images made.
	Size Size
	// Usage is the call's token count; nil when not reported.
	Usage *Usage
}

// Usage is an upstream's token count for a call (OpenAI's gpt-image "usage"). It is the type a
// streamed image's StreamDetails carry, so a streamed and a plain call report alike.
type Usage = StreamUsage

// IsZero reports whether nothing was reported.
func (r Reported) IsZero() bool { return r == Reported{} }

// Effective returns the size and quality a call of req was made at: the reported ones where the
// upstream reported them, else what req sent (a zero size and "" or "auto" when req left them to
// the upstream).
func (r Reported) Effective(req *Request) (Size, string) {
	size, quality := r.Size, r.Quality
	if size.IsZero() && req != nil {
		size = Size{W: req.Width, H: req.Height}
	}
	if quality == "" && req != nil {
		quality = req.Quality
	}
	return size, quality
}

// CombineReported is what several calls (or the images of one streamed call) report together:
// the token counts summed when every one reported a usage, and each setting only where every one
// reported the same value. It is the zero Reported for no reports.
func CombineReported(rs ...Reported) Reported {
	if len(rs) == 0 {
		return Reported{}
	}
	out := rs[0]
	if out.Usage != nil {
		u := *out.Usage
		out.Usage = &u
	}
	for _, r := range rs[1:] {
		if r.Background != out.Background {
			out.Background = ""
		}
		if r.OutputFormat != out.OutputFormat {
			out.OutputFormat = ""
		}
		if r.Quality != out.Quality {
			out.Quality = ""
		}
		if r.Size != out.Size {
			out.Size = Size{}
		}
		if r.Usage == nil || out.Usage == nil {
			out.Usage = nil
			continue
		}
		out.Usage.InputTokens += r.Usage.InputTokens
		out.Usage.InputImageTokens += r.Usage.InputImageTokens
		out.Usage.InputTextTokens += r.Usage.InputTextTokens
		out.Usage.OutputTokens += r.Usage.OutputTokens
		out.Usage.TotalTokens += r.Usage.TotalTokens
	}
	return out
}

// Output is one generated image: bytes, or a URL the front door downloads through the
// SSRF-safe client when it needs the bytes.
type Output struct {
	Data []byte
	// B64 is the image as the upstream sent it in base64, when the adapter kept that text rather
	// than decode it (Data is then empty): standard, padded base64 (ValidBase64 holds; adapters
	// check it, and read ContentType from the decoded head). A b64_json client gets this text as
	// it came, without a decode and re-encode; Bytes decodes it where the bytes are needed. It
	// may point into a buffer the Result gives back on Release.
	B64         []byte `json:"-"`
	ContentType string
	URL         string
	// Expires is when URL stops working, when the provider says or documents it.
	Expires       time.Time
	RevisedPrompt string
	Seed          *int64
	Width, Height int
}
