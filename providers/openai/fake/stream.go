package fake

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// streamEvent is the data of one server-sent event of a streamed gpt-image answer, in the shape
// of openai-go's ImageGenPartialImageEvent / ImageGenCompletedEvent (and the ImageEdit ones):
// partial_image_index only on partial images, usage only on completed ones.
type streamEvent struct {
	Type              string `json:"type"`
	B64JSON           string `json:"b64_json"`
	CreatedAt         int64  `json:"created_at"`
	Size              string `json:"size"`
	Quality           string `json:"quality"`
	Background        string `json:"background"`
	OutputFormat      string `json:"output_format"`
	PartialImageIndex *int   `json:"partial_image_index,omitempty"`
	Usage             *usage `json:"usage,omitempty"`
}

// sseEvent is one named event of a streamed answer.
type sseEvent struct {
	name string
	data streamEvent
}

// sseResponse is a streamed answer ("stream": true): text/event-stream, one event per partial
// image and one completed event per image, each flushed as it is written.
type sseResponse struct {
	events []sseEvent
}

// streamResponse makes the events of a streamed generation or edit: for each of the n images,
// partials partial images (partial_image_index 0, 1, …; real images of the final size that look
// different from the final one) and then its completed event. The completed images are the ones
// the same request without stream would have answered. Where OpenAI does not say (the usage of
// each image when n > 1), each completed event carries the request's input tokens once and its
// own share of the output tokens: an assumption.
func (f *Fake) streamResponse(c *call, p *params, inputImages int, inputs ...string) (any, *apiError) {
	resp, e := f.respond(c, p, inputImages, inputs...)
	if e != nil {
		return nil, e
	}
	r := resp.(*imagesResponse)
	prefix := "image_generation"
	if p.op == "edits" {
		prefix = "image_edit"
	}
	ws, hs, _ := strings.Cut(r.Size, "x")
	w, _ := strconv.Atoi(ws)
	h, _ := strconv.Atoi(hs)
	base := streamEvent{CreatedAt: c.now.Unix(), Size: r.Size, Quality: r.Quality, Background: r.Background, OutputFormat: r.OutputFormat}
	out := &sseResponse{}
	for i, d := range r.Data {
		for k := range p.partials {
			l := lookFor(w, h, r.Background == "transparent",
				append([]string{"partial", strconv.Itoa(k), p.op, p.model, p.prompt, p.quality, strconv.Itoa(i)}, inputs...)...)
			b, err := f.images.encode(r.OutputFormat, l, p.compression)
			if err != nil {
				return nil, &apiError{status: 500, typ: "server_error", message: "The server had an error while processing your request."}
			}
			ev := base
			ev.Type, ev.B64JSON, ev.PartialImageIndex = prefix+".partial_image", base64.StdEncoding.EncodeToString(b), &k
			out.events = append(out.events, sseEvent{name: ev.Type, data: ev})
		}
		ev := base
		ev.Type, ev.B64JSON = prefix+".completed", d.B64JSON
		if r.Usage != nil {
			u := *r.Usage
			u.OutputTokens = r.Usage.OutputTokens / len(r.Data)
			u.TotalTokens = u.InputTokens + u.OutputTokens
			ev.Usage = &u
		}
		out.events = append(out.events, sseEvent{name: ev.Type, data: ev})
	}
	return out, nil
}

// write sends the events, flushing each; Options.StreamPause runs before each one.
func (s *sseResponse) write(ctx context.Context, w http.ResponseWriter, pause func(ctx context.Context, event string)) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Request-Id", requestID())
	w.Header().Set("Openai-Version", "2020-10-01")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for _, ev := range s.events {
		if pause != nil {
			pause(ctx, ev.name)
		}
		if ctx.Err() != nil {
			return
		}
		data, err := json.Marshal(ev.data)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
