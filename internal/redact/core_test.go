package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// jsonLogger returns a logger writing JSON lines into a buffer, with its core wrapped by r.
func jsonLogger(r *Redactor) (*zap.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	c := zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel)
	return zap.New(r.Core(c)), &buf
}

// upstream is an upstream's object that embeds the key in its fields.
type upstream struct {
	Message string            `json:"message"`
	Param   string            `json:"param"`
	Extra   map[string]string `json:"extra"`
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

// verboseErr prints its detail only in its %+v form, like errors with stack traces.
type verboseErr struct{ detail string }

func (verboseErr) Error() string { return "upstream failed" }
func (e verboseErr) Format(f fmt.State, verb rune) {
	if f.Flag('+') {
		io.WriteString(f, "upstream failed: "+e.detail)
		return
	}
	io.WriteString(f, "upstream failed")
}

type obj struct{ s string }

func (o obj) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("inner", o.s)
	enc.AddInt("n", 1)
	return enc.AddArray("list", zapcore.ArrayMarshalerFunc(func(ae zapcore.ArrayEncoder) error {
		ae.AppendString("clean")
		ae.AppendString(o.s)
		return nil
	}))
}

func TestCoreKeepsSecretsOutOfTheOutput(t *testing.T) {
	r := New(key, special)
	log, buf := jsonLogger(r)
	log = log.Named("test").With(zap.String("channel_key", key))

	log.Warn("upstream said: invalid key "+key,
		zap.String("detail", "Bearer "+key),
		zap.Error(fmt.Errorf("openai: upstream said: %q", "Incorrect API key provided: "+key)),
		zap.NamedError("joined", errors.Join(errors.New("first"), errors.New("second "+key))),
		zap.NamedError("verbose", verboseErr{"key " + key}),
		zap.Any("any_string", "x"+key),
		zap.Any("any_bytes", []byte(key)),
		zap.ByteString("bytestring", []byte("k="+url.QueryEscape(special))),
		zap.Binary("binary", []byte(key)),
		zap.Stringer("stringer", stringer{"s " + key}),
		zap.Any("any_stringer", stringer{key}),
		zap.Any("any_struct", upstream{Message: "m " + key, Param: key, Extra: map[string]string{"k": key}}),
		zap.Any("any_map", map[string]any{"nested": []any{key, 1}, key: "value"}),
		zap.Strings("strings", []string{"a", key}),
		zap.Any("any_strings", []string{key}),
		zap.Object("object", obj{key}),
		zap.Inline(obj{key}),
		zap.Dict("dict", zap.String("d", key)),
		zap.String(key, "a key used as a field name"),
		zap.Int("count", 3),
		zap.Duration("took", time.Second),
	)
	log.Sugar().Infof("sugared %s", key)

	out := buf.String()
	for _, f := range forms(key) {
		if strings.Contains(out, f) {
			t.Fatalf("the key (%q) reached the output:\n%s", f, out)
		}
	}
	for _, f := range forms(special) {
		if strings.Contains(out, f) {
			t.Fatalf("the special secret (%q) reached the output:\n%s", f, out)
		}
	}
	// Base64 of the key is what the JSON encoder prints for a binary field.
	if strings.Contains(out, "c2stcHJvai1aeDgxbVFlNExyVDB2Yk41c0twMldkWWg") {
		t.Fatalf("the base64 of the key reached the output:\n%s", out)
	}
	for _, want := range []string{`"msg":"upstream said: invalid key [redacted]"`, `"channel_key":"[redacted]"`,
		`"count":3`, `"took":1`, `"n":1`, `"clean"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, out)
	}
}

func TestCoreLeavesCleanLinesAlone(t *testing.T) {
	write := func(r *Redactor) string {
		log, buf := jsonLogger(r)
		log.With(zap.String("channel", "ark")).Info("request",
			zap.String("path", "/v1/images/generations"), zap.Error(verboseErr{"stack"}),
			zap.Stringer("s", stringer{"ok"}), zap.Any("m", map[string]int{"a": 1}),
			zap.Strings("l", []string{"x"}), zap.Object("o", obj{"fine"}), zap.Binary("b", []byte("bin")))
		return buf.String()
	}
	// The timestamp differs between the two lines; compare without it.
	strip := func(s string) string { return s[strings.Index(s, `"msg"`):] }
	if a, b := strip(write(nil)), strip(write(New(key))); a != b {
		t.Fatalf("the wrapper changed a clean line:\n%s\n%s", a, b)
	}
}

func TestCoreRespectsLevels(t *testing.T) {
	var buf bytes.Buffer
	c := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.WarnLevel)
	log := zap.New(New(key).Core(c))
	log.Info("dropped " + key)
	log.Warn("kept " + key)
	if out := buf.String(); strings.Contains(out, "dropped") || !strings.Contains(out, "kept [redacted]") {
		t.Fatalf("output: %s", out)
	}
	if New(key).Core(c).Enabled(zapcore.InfoLevel) {
		t.Fatal("the wrapper enabled a level the core does not")
	}
}

func TestWrapCoreOption(t *testing.T) {
	var buf bytes.Buffer
	c := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(c).WithOptions(zap.WrapCore(New(key).Core))
	log.Named("child").Debug("x", zap.String("k", key))
	if strings.Contains(buf.String(), key) {
		t.Fatalf("the key reached the output: %s", buf.String())
	}
}

func BenchmarkCore(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    *Redactor
	}{{"bare", nil}, {"redacted", benchRedactor()}} {
		b.Run(bc.name, func(b *testing.B) {
			c := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
			log := zap.New(bc.r.Core(c)).With(zap.String("provider", "ark"), zap.String("channel", "ark-main"))
			err := errors.New("ark: upstream HTTP 400 code \"InvalidParameter\": the parameter size is not valid")
			b.ReportAllocs()
			for b.Loop() {
				log.Info("request", zap.String("method", "POST"), zap.String("path", "/v1/images/generations"),
					zap.Int("status", 200), zap.Duration("took", time.Second), zap.String("request_id", "req_8f7e6d5c4b3a2910"),
					zap.String("model", "seedream-4"), zap.Error(err))
			}
		})
	}
}

// A wrapped sampler keeps sampling: the redacting core asks it before it writes.
func TestCoreKeepsTheWrappedSampling(t *testing.T) {
	var buf bytes.Buffer
	inner := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.InfoLevel)
	sampled := zapcore.NewSamplerWithOptions(inner, time.Hour, 3, 0) // the first 3 a tick, then none
	log := zap.New(New("s3cret-value-123").Core(sampled))
	for range 10 {
		log.Info("same message", zap.String("k", "s3cret-value-123"))
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Fatalf("%d lines written, want the sampler's 3", n)
	}
	if strings.Contains(buf.String(), "s3cret-value-123") {
		t.Fatal("a secret was written")
	}
}

// A tee of cores at different levels keeps its levels: an info line reaches only the info core.
func TestCoreKeepsATeesLevels(t *testing.T) {
	var info, warn bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	tee := zapcore.NewTee(
		zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&info), zap.InfoLevel),
		zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&warn), zap.WarnLevel))
	log := zap.New(New("s3cret-value-123").Core(tee))
	log.Info("an info line s3cret-value-123")
	log.Warn("a warning", zap.Error(errors.New("s3cret-value-123")))
	if strings.Count(info.String(), "\n") != 2 || strings.Count(warn.String(), "\n") != 1 || strings.Contains(warn.String(), "info line") {
		t.Fatalf("info core got:\n%swarn core got:\n%s", info.String(), warn.String())
	}
	if strings.Contains(info.String()+warn.String(), "s3cret-value-123") {
		t.Fatal("a secret was written")
	}
}
