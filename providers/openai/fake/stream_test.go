package fake

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image/png"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestStreamingWithTheSDK reads the fake's streamed answers with openai-go's GenerateStreaming and
// EditStreaming: partial images then one completed event per image, in the SDK's event shapes.
func TestStreamingWithTheSDK(t *testing.T) {
	srv := newServer(t, New(Options{}))
	client := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey(DefaultKey), option.WithMaxRetries(0),
		option.WithHTTPClient(srv.Client()))
	ctx := context.Background()
	checkPNG := func(t *testing.T, b64 string) {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 1024 || img.Bounds().Dy() != 1024 {
			t.Fatalf("not a 1024x1024 PNG: %v", err)
		}
	}

	t.Run("generate n=2 partial_images=2", func(t *testing.T) {
		s := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-1",
			N: openai.Int(2), PartialImages: openai.Int(2), Size: "1024x1024", Quality: "low"})
		var got []string
		var finals []string
		for s.Next() {
			ev := s.Current()
			switch v := ev.AsAny().(type) {
			case openai.ImageGenPartialImageEvent:
				got = append(got, "p"+string(rune('0'+v.PartialImageIndex)))
				checkPNG(t, v.B64JSON)
				if v.Size != "1024x1024" || v.Quality != "low" || v.Background != "opaque" || v.OutputFormat != "png" || v.CreatedAt == 0 {
					t.Fatalf("partial event %s", ev.RawJSON())
				}
			case openai.ImageGenCompletedEvent:
				got = append(got, "c")
				checkPNG(t, v.B64JSON)
				finals = append(finals, v.B64JSON)
				if v.Usage.TotalTokens == 0 || v.Usage.OutputTokens == 0 || v.Size != "1024x1024" || v.CreatedAt == 0 {
					t.Fatalf("completed event %s", ev.RawJSON())
				}
				if strings.Contains(ev.RawJSON(), "partial_image_index") {
					t.Fatalf("a completed event carries partial_image_index: %s", ev.RawJSON())
				}
			default:
				t.Fatalf("unexpected event %s", ev.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "p0,p1,c,p0,p1,c" {
			t.Fatalf("events %v", got)
		}
		// The completed images are what the same request without stream answers.
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-1",
			N: openai.Int(2), Size: "1024x1024", Quality: "low"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Data[0].B64JSON != finals[0] || res.Data[1].B64JSON != finals[1] {
			t.Fatal("the streamed final images differ from the non-streamed ones")
		}
	})

	t.Run("generate without partial images", func(t *testing.T) {
		s := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Prompt: "a red fox", Model: "gpt-image-1", Quality: "low"})
		n := 0
		for s.Next() {
			if s.Current().Type != "image_generation.completed" {
				t.Fatalf("event %s", s.Current().Type)
			}
			n++
		}
		if s.Err() != nil || n != 1 {
			t.Fatalf("%d events, %v", n, s.Err())
		}
	})

	t.Run("edit", func(t *testing.T) {
		sq := makePNG(t, 64, 64, true)
		s := client.Images.EditStreaming(ctx, openai.ImageEditParams{Prompt: "a picnic", Model: "gpt-image-1",
			Image:         openai.ImageEditParamsImageUnion{OfFile: openai.File(bytes.NewReader(sq), "a.png", "image/png")},
			PartialImages: openai.Int(1), Quality: "low", Size: "1024x1024"})
		var got []string
		for s.Next() {
			ev := s.Current()
			got = append(got, ev.Type)
			checkPNG(t, ev.B64JSON)
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "image_edit.partial_image,image_edit.completed" {
			t.Fatalf("events %v", got)
		}
	})

	t.Run("refusals before the stream are JSON errors", func(t *testing.T) {
		s := client.Images.GenerateStreaming(ctx, openai.ImageGenerateParams{Prompt: "x " + ContentPolicyTrigger, Model: "gpt-image-1"})
		for s.Next() {
			t.Fatalf("event %s", s.Current().RawJSON())
		}
		var apiErr *openai.Error
		if !errors.As(s.Err(), &apiErr) || apiErr.Code != "moderation_blocked" {
			t.Fatalf("error %v", s.Err())
		}
	})
}
