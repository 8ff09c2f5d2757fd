package fake

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// compatSpec is one model of seed 001's aggregator: width and height in multiples of 8 up to
// maxSide (the seed's "最高" column), or for dall-e-3 the seed's two sizes and none of the
// extension fields. The 256-pixel minimum side and the ranges of steps (1–100), guidance (0–20)
// and seed (0…2^31−1) are assumptions: seed 001 gives none.
type compatSpec struct {
	maxSide int
	sizes   []string
}

var compatSpecs = map[string]compatSpec{
	"flux-1.1-pro":        {maxSide: 2048},
	"flux-dev":            {maxSide: 1024},
	"flux-schnell":        {maxSide: 1024},
	"stable-diffusion-xl": {maxSide: 1024},
	"dall-e-3":            {sizes: []string{"1024x1024", "1792x1024"}},
	"midjourney-v6":       {maxSide: 2048},
}

var compatModels = []string{"flux-1.1-pro", "flux-dev", "flux-schnell", "stable-diffusion-xl", "dall-e-3", "midjourney-v6"}

var compatFields = []string{"model", "prompt", "negative_prompt", "width", "height", "size", "n",
	"num_inference_steps", "guidance_scale", "seed", "response_format", "user", "quality", "style"}

// compatExtensions are seed 001's fields beyond OpenAI's.
var compatExtensions = []string{"negative_prompt", "num_inference_steps", "guidance_scale", "seed"}

// compatGenerations answers POST /v1/images/generations on the OpenAI-compatible fake.
func (f *Fake) compatibleGenerations(c *call) (any, *apiError) {
	if mediaType(c.r.Header.Get("Content-Type")) != "application/json" {
		return nil, jsonParseError()
	}
	fs, e := parseJSONFields(c.body)
	if e != nil {
		return nil, e
	}
	if e := checkKnown(fs, compatFields...); e != nil {
		return nil, e
	}
	model, ok, e := fs.str("model")
	if e != nil {
		return nil, e
	}
	if !ok || model == "" {
		return nil, missingParam("model")
	}
	sp, ok := compatSpecs[model]
	if !ok {
		return nil, badValue("model", model, compatModels)
	}
	prompt, ok, e := fs.str("prompt")
	if e != nil {
		return nil, e
	}
	if !ok || strings.TrimSpace(prompt) == "" {
		return nil, missingParam("prompt")
	}
	w, h, e := compatSize(fs, sp)
	if e != nil {
		return nil, e
	}
	n := 1
	if v, ok, e := fs.integer("n"); e != nil {
		return nil, e
	} else if ok {
		if e := intRange("n", v, 1, 10); e != nil {
			return nil, e
		}
		n = int(v)
	}
	if sp.sizes != nil {
		for _, name := range compatExtensions {
			if fs.has(name) {
				return nil, invalid(name, "unsupported_parameter", "'%s' is not supported by model '%s'.", name, model)
			}
		}
	}
	neg, _, e := fs.str("negative_prompt")
	if e != nil {
		return nil, e
	}
	var steps, seed int64
	var guidance float64
	if steps, ok, e = fs.integer("num_inference_steps"); e != nil {
		return nil, e
	} else if ok {
		if e := intRange("num_inference_steps", steps, 1, 100); e != nil {
			return nil, e
		}
	}
	if guidance, ok, e = fs.number("guidance_scale"); e != nil {
		return nil, e
	} else if ok && (guidance < 0 || guidance > 20 || math.IsNaN(guidance)) {
		return nil, invalid("guidance_scale", "invalid_value", "Invalid 'guidance_scale': expected a number between 0 and 20, but got %v instead.", guidance)
	}
	seedSet := false
	if seed, seedSet, e = fs.integer("seed"); e != nil {
		return nil, e
	} else if seedSet {
		if e := intRange("seed", seed, 0, math.MaxInt32); e != nil {
			return nil, e
		}
	}
	rf, e := enum(fs, "response_format", []string{"url", "b64_json"})
	if e != nil {
		return nil, e
	}
	for _, name := range []string{"user", "quality", "style"} {
		if _, _, e := fs.str(name); e != nil {
			return nil, e
		}
	}
	if strings.Contains(prompt, ContentPolicyTrigger) {
		return nil, policyError(dallE3)
	}
	resp := &imagesResponse{Created: c.now.Unix()}
	for i := range n {
		l := lookFor(w, h, false, model, prompt, neg, strconv.FormatInt(seed, 10), strconv.FormatBool(seedSet),
			strconv.FormatInt(steps, 10), strconv.FormatFloat(guidance, 'g', -1, 64), strconv.Itoa(i))
		if rf == "b64_json" {
			b, err := f.images.encode("png", l, 0)
			if err != nil {
				return nil, &apiError{status: 500, typ: "server_error", message: "The server had an error while processing your request."}
			}
			resp.Data = append(resp.Data, imageData{B64JSON: base64.StdEncoding.EncodeToString(b)})
		} else {
			resp.Data = append(resp.Data, imageData{URL: f.signedURL(c.base, l, c.now)})
		}
	}
	return resp, nil
}

// compatSize reads width/height (seed 001) or size ("WxH"); both may be given if they agree.
// Without either the host makes 1024x1024 (the seed's example size).
func compatSize(fs fields, sp compatSpec) (w, h int, e *apiError) {
	wv, wok, e := fs.integer("width")
	if e != nil {
		return 0, 0, e
	}
	hv, hok, e := fs.integer("height")
	if e != nil {
		return 0, 0, e
	}
	if wok != hok {
		missing := "height"
		if !wok {
			missing = "width"
		}
		return 0, 0, missingParam(missing)
	}
	size, sok, e := fs.str("size")
	if e != nil {
		return 0, 0, e
	}
	if sok {
		s, err := providers.ParseSize(size)
		if err != nil {
			return 0, 0, invalid("size", "invalid_value", "Invalid 'size': expected WIDTHxHEIGHT, but got '%s' instead.", size)
		}
		if wok && (int64(s.W) != wv || int64(s.H) != hv) {
			return 0, 0, invalid("size", "invalid_value", "'size' (%s) disagrees with 'width' and 'height' (%dx%d).", size, wv, hv)
		}
		wv, hv, wok = int64(s.W), int64(s.H), true
	}
	if !wok {
		wv, hv = 1024, 1024
	}
	if sp.sizes != nil {
		got := fmt.Sprintf("%dx%d", wv, hv)
		if !slices.Contains(sp.sizes, got) {
			return 0, 0, badValue("size", got, sp.sizes)
		}
		return int(wv), int(hv), nil
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"width", wv}, {"height", hv}} {
		if e := intRange(d.name, d.v, 256, int64(sp.maxSide)); e != nil {
			return 0, 0, e
		}
		if d.v%8 != 0 {
			return 0, 0, invalid(d.name, "invalid_value", "Invalid '%s': must be a multiple of 8, but got %d instead.", d.name, d.v)
		}
	}
	return int(wv), int(hv), nil
}
