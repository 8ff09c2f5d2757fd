package fake

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	_ "image/jpeg" // registers JPEG for DecodeConfig
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// family groups models that take the same fields.
type family int

const (
	fluxDev family = iota
	kontextSingle
	kontextMulti
	kontextText2Image
	step1x
)

// specs are the models of seed 004 under both spellings (PROVIDERS.md §3.2).
var specs = map[string]family{
	"black-forest-labs/FLUX.1-dev":                     fluxDev,
	"black-forest-labs/flux.1-dev":                     fluxDev,
	"black-forest-labs/Flux-Kontext-Max":               kontextSingle,
	"black-forest-labs/flux-kontext-max":               kontextSingle,
	"black-forest-labs/Flux-Kontext-Pro":               kontextSingle,
	"black-forest-labs/flux-kontext-pro":               kontextSingle,
	"black-forest-labs/Flux-Kontext-Max-multi":         kontextMulti,
	"black-forest-labs/flux-kontext-max/multi":         kontextMulti,
	"black-forest-labs/Flux-Kontext-Pro-multi":         kontextMulti,
	"black-forest-labs/flux-kontext-pro/multi":         kontextMulti,
	"black-forest-labs/Flux-Kontext-Max-text2image":    kontextText2Image,
	"black-forest-labs/flux-kontext-max/text-to-image": kontextText2Image,
	"black-forest-labs/Flux-Kontext-Pro-text2image":    kontextText2Image,
	"black-forest-labs/flux-kontext-pro/text-to-image": kontextText2Image,
	"stepfun-ai/Step1X-Edit":                           step1x,
	"stepfun-ai/step1x-edit":                           step1x,
}

// ratios are the aspect_ratio values and the output sizes the fake makes for them (about one
// megapixel, multiples of 16).
var ratios = map[string][2]int{}

func init() {
	for _, r := range []string{"21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"} {
		a, b, _ := strings.Cut(r, ":")
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		w := math.Sqrt(1024 * 1024 * float64(x) / float64(y))
		h := w * float64(y) / float64(x)
		ratios[r] = [2]int{int(math.Round(w/16)) * 16, int(math.Round(h/16)) * 16}
	}
}

// plan is what a valid request produces.
type plan struct {
	count int
	w, h  int
}

const (
	seedMax        = 2147483647
	maxMultiImages = 10
	maxImageBytes  = 10 << 20
)

var (
	wxh     = regexp.MustCompile(`^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$`)
	dataURI = regexp.MustCompile(`^data:image/([a-zA-Z0-9.+-]+);base64,`)
)

// check validates req for the model family and returns what to produce, or a detail of what
// is wrong.
func check(fam family, req *genRequest) (plan, string) {
	p := plan{count: 1, w: 1024, h: 1024}
	takes := func(ok bool, field string) string {
		if ok {
			return ""
		}
		return field + " is not supported by model " + req.Model
	}
	switch req.ResponseFormat {
	case "", "url", "b64_json":
	default:
		return p, "response_format must be url or b64_json"
	}
	if req.N != nil {
		n := *req.N
		if fam == fluxDev || fam == kontextText2Image {
			if n < 1 || n > 4 {
				return p, "n must be between 1 and 4"
			}
			p.count = n
		} else if n != 1 {
			return p, "n is not supported by model " + req.Model
		}
	}
	// image / images
	if req.Image != nil {
		if d := takes(fam == fluxDev || fam == kontextSingle || fam == step1x, "image"); d != "" {
			return p, d
		}
		w, h, d := checkImage(*req.Image)
		if d != "" {
			return p, "image: " + d
		}
		if fam != fluxDev && w > 0 {
			p.w, p.h = w, h
		}
	} else if fam == kontextSingle || fam == step1x {
		return p, "image is required for model " + req.Model
	}
	if req.Images != nil {
		if d := takes(fam == kontextMulti, "images"); d != "" {
			return p, d
		}
		if len(req.Images) == 0 || len(req.Images) > maxMultiImages {
			return p, fmt.Sprintf("images must hold between 1 and %d images", maxMultiImages)
		}
		for i, im := range req.Images {
			if _, _, d := checkImage(im); d != "" {
				return p, fmt.Sprintf("images[%d]: %s", i, d)
			}
		}
	} else if fam == kontextMulti {
		return p, "images is required for model " + req.Model
	}
	if req.Size != nil {
		if d := takes(fam == fluxDev, "size"); d != "" {
			return p, d
		}
		m := wxh.FindStringSubmatch(*req.Size)
		if m == nil {
			return p, "size must be WIDTHxHEIGHT"
		}
		w, _ := strconv.Atoi(m[1])
		h, _ := strconv.Atoi(m[2])
		if w < 256 || h < 256 || w > 1536 || h > 1536 {
			return p, "size must be between 256x256 and 1536x1536"
		}
		p.w, p.h = w, h
	}
	if req.Strength != nil {
		if d := takes(fam == fluxDev, "strength"); d != "" {
			return p, d
		}
		if s := *req.Strength; s < 0 || s > 1 {
			return p, "strength must be between 0 and 1"
		}
	}
	if req.AspectRatio != nil {
		if d := takes(fam == kontextText2Image || fam == kontextMulti, "aspect_ratio"); d != "" {
			return p, d
		}
		wh, ok := ratios[*req.AspectRatio]
		if !ok {
			return p, "aspect_ratio must be one of 21:9, 16:9, 4:3, 3:2, 1:1, 2:3, 3:4, 9:16, 9:21"
		}
		p.w, p.h = wh[0], wh[1]
	}
	if req.Steps != nil {
		if d := takes(fam == fluxDev || fam == step1x, "steps"); d != "" {
			return p, d
		}
		if s := *req.Steps; s < 1 || s > 50 {
			return p, "steps must be between 1 and 50"
		}
	}
	if req.NegativePrompt != nil {
		if d := takes(fam == step1x, "negative_prompt"); d != "" {
			return p, d
		}
	}
	if req.Seed != nil && (*req.Seed < -1 || *req.Seed > seedMax) {
		return p, "seed must be between -1 and 2147483647"
	}
	if req.GuidanceScale != nil && (*req.GuidanceScale < 1 || *req.GuidanceScale > 10) {
		return p, "guidance_scale must be between 1 and 10"
	}
	return p, ""
}

// checkImage validates an image reference: a URL, a data URI or bare base64. It returns the
// image's dimensions when they can be read.
func checkImage(ref string) (int, int, string) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		if u, err := url.Parse(ref); err != nil || u.Host == "" {
			return 0, 0, "the URL is not valid"
		}
		return 0, 0, ""
	}
	payload := ref
	if m := dataURI.FindStringSubmatch(ref); m != nil {
		payload = ref[len(m[0]):]
	} else if strings.HasPrefix(ref, "data:") {
		return 0, 0, "a data URI must be data:image/<format>;base64,<data>"
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || len(data) == 0 {
		return 0, 0, "not a URL or valid base64 image data"
	}
	if len(data) > maxImageBytes {
		return 0, 0, "the image is larger than 10MB"
	}
	ct := http.DetectContentType(data)
	if !slices.Contains([]string{"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"}, ct) {
		return 0, 0, "the data is not a supported image"
	}
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		w, h := cfg.Width, cfg.Height
		for w > 2048 || h > 2048 {
			w, h = w/2, h/2
		}
		return max(w, 1), max(h, 1), ""
	}
	return 0, 0, ""
}
