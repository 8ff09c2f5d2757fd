package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// family groups models that share rules.
type family int

const (
	t2i30 family = iota
	edit30
	seedream40
	seedream45
	seedream50
)

// spec is one model the fake serves.
type spec struct {
	id  string
	fam family
}

// specs are the models of PROVIDERS.md §3.1.
var specs = map[string]spec{
	"doubao-seedream-3-0-t2i-250415": {"doubao-seedream-3-0-t2i-250415", t2i30},
	"doubao-seededit-3-0-i2i-250628": {"doubao-seededit-3-0-i2i-250628", edit30},
	"doubao-seedream-4-0-250828":     {"doubao-seedream-4-0-250828", seedream40},
	"doubao-seedream-4-5-251128":     {"doubao-seedream-4-5-251128", seedream45},
	"doubao-seedream-5-0-260128":     {"doubao-seedream-5-0-260128", seedream50},
}

// plan is what a valid request produces.
type plan struct {
	count int
	w, h  int
}

// Limits of §3.1.
const (
	maxImageBytes   = 10 << 20
	seedMax         = 2147483647
	minPixels40     = 1280 * 720
	minPixels45     = 3686400
	maxPixels4x     = 16777216
	maxAspect4x     = 16
	maxGroup        = 15
	maxRefs40       = 10
	maxRefs45       = 14
	defaultSide30   = 1024
	defaultSide4x   = 2048
	minSide30       = 512
	maxSide30       = 2048
	minEditSide     = 15 // sides must be > 14 px
	editAspectLimit = 3  // aspect strictly inside (1/3, 3)
)

var (
	wxh     = regexp.MustCompile(`^([1-9][0-9]{0,5})x([1-9][0-9]{0,5})$`)
	dataURI = regexp.MustCompile(`^data:image/([a-z0-9.+-]+);base64,`)
)

// check validates req against the model's rules, answering the error itself when it fails.
func (s spec) check(w http.ResponseWriter, id string, req *genRequest) (plan, bool) {
	p := plan{count: 1}
	switch req.ResponseFormat {
	case "", "url", "b64_json":
	default:
		invalid(w, id, "response_format", "response_format must be one of 'url' or 'b64_json'")
		return p, false
	}
	if req.Stream != nil && *req.Stream {
		invalid(w, id, "stream", "streaming is not simulated by this fake")
		return p, false
	}
	fourX := s.fam == seedream40 || s.fam == seedream45 || s.fam == seedream50

	// image
	refs, isArray, ok := parseImageField(req.Image)
	if !ok {
		invalid(w, id, "image", "image must be a string or an array of strings")
		return p, false
	}
	inW, inH := 0, 0
	switch s.fam {
	case t2i30:
		if len(refs) > 0 {
			notSupported(w, id, "image")
			return p, false
		}
	case edit30:
		if len(refs) == 0 {
			arkError(w, http.StatusBadRequest, "BadRequest", "MissingParameter", "image",
				"The request failed because it is missing one or multiple required parameters: image.", id)
			return p, false
		}
		if isArray || len(refs) != 1 {
			invalid(w, id, "image", "only one image is supported by the current model")
			return p, false
		}
		iw, ih, detail := checkImage(refs[0], true)
		if detail != "" {
			invalid(w, id, "image", detail)
			return p, false
		}
		inW, inH = iw, ih
	default:
		limit := maxRefs45
		if s.fam == seedream40 {
			limit = maxRefs40
		}
		if len(refs) > limit {
			invalid(w, id, "image", fmt.Sprintf("the number of images must be at most %d", limit))
			return p, false
		}
		for _, ref := range refs {
			if _, _, detail := checkImage(ref, false); detail != "" {
				invalid(w, id, "image", detail)
				return p, false
			}
		}
	}

	// size
	var sizeOK bool
	p.w, p.h, sizeOK = s.size(w, id, req.Size, inW, inH)
	if !sizeOK {
		return p, false
	}

	// seed and guidance: 3.0-t2i and SeedEdit only.
	if req.Seed != nil {
		if fourX {
			notSupported(w, id, "seed")
			return p, false
		}
		if *req.Seed < -1 || *req.Seed > seedMax {
			invalid(w, id, "seed", "seed must be between -1 and 2147483647")
			return p, false
		}
	}
	if req.GuidanceScale != nil {
		if fourX {
			notSupported(w, id, "guidance_scale")
			return p, false
		}
		if g := *req.GuidanceScale; g < 1 || g > 10 {
			invalid(w, id, "guidance_scale", "guidance_scale must be between 1 and 10")
			return p, false
		}
	}
	if req.OutputFormat != "" {
		if s.fam != seedream50 {
			notSupported(w, id, "output_format")
			return p, false
		}
		if req.OutputFormat != "jpeg" && req.OutputFormat != "png" {
			invalid(w, id, "output_format", "output_format must be one of 'jpeg' or 'png'")
			return p, false
		}
	}
	if req.OptimizePromptOptions != nil {
		if !fourX {
			notSupported(w, id, "optimize_prompt_options")
			return p, false
		}
		o := req.OptimizePromptOptions
		if (o.Mode != "" && o.Mode != "standard" && o.Mode != "fast") ||
			(o.Thinking != "" && o.Thinking != "auto" && o.Thinking != "enabled" && o.Thinking != "disabled") {
			invalid(w, id, "optimize_prompt_options", "mode must be 'standard' or 'fast' and thinking 'auto', 'enabled' or 'disabled'")
			return p, false
		}
	}
	switch req.SequentialImageGeneration {
	case "", "disabled":
	case "auto":
		if !fourX {
			notSupported(w, id, "sequential_image_generation")
			return p, false
		}
		if o := req.SequentialImageGenerationOptions; o != nil && o.MaxImages != nil {
			n := *o.MaxImages
			if n < 1 || n > maxGroup {
				invalid(w, id, "sequential_image_generation_options.max_images", "max_images must be between 1 and 15")
				return p, false
			}
			if len(refs)+n > maxGroup {
				invalid(w, id, "sequential_image_generation_options.max_images", "the number of input and output images must be at most 15")
				return p, false
			}
			p.count = n
		}
	default:
		invalid(w, id, "sequential_image_generation", "sequential_image_generation must be one of 'auto' or 'disabled'")
		return p, false
	}
	return p, true
}

// size checks the size field and returns the output size.
func (s spec) size(w http.ResponseWriter, id, size string, inW, inH int) (int, int, bool) {
	lower := strings.ToLower(size)
	switch s.fam {
	case t2i30:
		if size == "" {
			return defaultSide30, defaultSide30, true
		}
		m := wxh.FindStringSubmatch(size)
		if m == nil {
			invalid(w, id, "size", "size must be in the format of 'WIDTHxHEIGHT'")
			return 0, 0, false
		}
		sw, _ := strconv.Atoi(m[1])
		sh, _ := strconv.Atoi(m[2])
		if sw < minSide30 || sw > maxSide30 || sh < minSide30 || sh > maxSide30 {
			invalid(w, id, "size", "image width and height must be between 512 and 2048")
			return 0, 0, false
		}
		return sw, sh, true
	case edit30:
		if size != "" && lower != "adaptive" {
			invalid(w, id, "size", "the specified size is not supported for model doubao-seededit-3-0-i2i")
			return 0, 0, false
		}
		if inW == 0 || inH == 0 {
			return 1024, 1024, true
		}
		for inW > 2048 || inH > 2048 {
			inW, inH = inW/2, inH/2
		}
		return inW, inH, true
	}
	words := map[string]int{"1k": 1024, "2k": 2048, "4k": 4096}
	vocabulary := "'WIDTHxHEIGHT', '1k', '2k', or '4k'"
	model := "doubao-seedream-4-0"
	minPixels := minPixels40
	switch s.fam {
	case seedream45:
		words = map[string]int{"2k": 2048, "4k": 4096}
		vocabulary, model, minPixels = "'WIDTHxHEIGHT', '2k', or '4k'", "doubao-seedream-4-5", minPixels45
	case seedream50:
		words = map[string]int{"2k": 2048, "3k": 3072, "4k": 4096}
		vocabulary, model, minPixels = "'WIDTHxHEIGHT', '2k', '3k', or '4k'", "doubao-seedream-5-0", minPixels45
	}
	if size == "" {
		return defaultSide4x, defaultSide4x, true
	}
	if side, ok := words[lower]; ok {
		return side, side, true
	}
	if lower == "adaptive" || lower == "1k" || lower == "3k" {
		invalidQuiet(w, id, "size", "the specified size is not supported for model "+model)
		return 0, 0, false
	}
	m := wxh.FindStringSubmatch(size)
	if m == nil {
		invalid(w, id, "size", "size must be one of "+vocabulary)
		return 0, 0, false
	}
	sw, _ := strconv.Atoi(m[1])
	sh, _ := strconv.Atoi(m[2])
	px := sw * sh
	switch {
	case px < minPixels:
		invalidQuiet(w, id, "size", fmt.Sprintf("image size must be at least %d pixels", minPixels))
	case px > maxPixels4x:
		invalidQuiet(w, id, "size", fmt.Sprintf("image size must be at most %d pixels", maxPixels4x))
	case sw > maxAspect4x*sh || sh > maxAspect4x*sw:
		invalidQuiet(w, id, "size", "image aspect ratio must be between 1/16 and 16")
	default:
		return sw, sh, true
	}
	return 0, 0, false
}

// parseImageField reads image as a string or an array of strings.
func parseImageField(raw json.RawMessage) (refs []string, isArray, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, false, true
		}
		return []string{one}, false, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, true, true
	}
	return nil, false, false
}

// checkImage validates one image reference (URL or data URI) and returns its dimensions when
// they can be read, or a detail saying what is wrong. strict applies SeedEdit's rules.
func checkImage(ref string, strict bool) (int, int, string) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		if u, err := url.Parse(ref); err != nil || u.Host == "" {
			return 0, 0, "the image URL is not valid"
		}
		return 0, 0, ""
	}
	m := dataURI.FindStringSubmatch(ref)
	if m == nil {
		return 0, 0, "image must be a URL or a data URI of the form data:image/<format in lower case>;base64,<data>"
	}
	data, err := base64.StdEncoding.DecodeString(ref[len(m[0]):])
	if err != nil {
		return 0, 0, "the image data is not valid base64"
	}
	if len(data) > maxImageBytes {
		return 0, 0, "image size must be at most 10MB"
	}
	ct := http.DetectContentType(data)
	if !strings.HasPrefix(ct, "image/") {
		return 0, 0, "the image data is not a supported image format"
	}
	if !strict {
		return 0, 0, ""
	}
	if ct != "image/png" && ct != "image/jpeg" {
		return 0, 0, "the image format must be jpeg or png"
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, "the image could not be decoded"
	}
	if cfg.Width < minEditSide || cfg.Height < minEditSide {
		return 0, 0, "image width and height must be greater than 14 pixels"
	}
	if cfg.Width >= editAspectLimit*cfg.Height || cfg.Height >= editAspectLimit*cfg.Width {
		return 0, 0, "image aspect ratio must be between 1/3 and 3"
	}
	return cfg.Width, cfg.Height, ""
}

// encodeB64 is standard base64 without a data: prefix (Ark's b64_json).
func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
