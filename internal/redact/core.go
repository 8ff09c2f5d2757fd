package redact

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap/zapcore"
)

// Core wraps c so that no known secret reaches its output: the entry's message and every field
// that carries text (strings, byte strings, binary, errors, Stringers, reflected values, objects
// and arrays) are checked, and a field holding a secret is replaced by a string field of the
// same key with the secret replaced by Placeholder (objects and arrays keep their structure
// where they can). Fields without a secret are passed on untouched, so the output of a clean log
// line is exactly what c alone would write. A nil r returns c.
//
// Wrap the root logger's core once, at start-up, so that every named child logger and every
// field added with With is covered:
//
//	log = log.WithOptions(zap.WrapCore(r.Core))
func (r *Redactor) Core(c zapcore.Core) zapcore.Core {
	if r == nil {
		return c
	}
	return &core{Core: c, r: r}
}

type core struct {
	zapcore.Core
	r *Redactor
}

// With scrubs the context fields once, when they are attached.
func (c *core) With(fields []zapcore.Field) zapcore.Core {
	return &core{Core: c.Core.With(c.r.fields(fields)), r: c.r}
}

// Check adds c itself when any wrapped core takes the level; Write makes the wrapped core's own
// decision, once, for the scrubbed entry.
func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write scrubs the message and the fields, then lets the wrapped core check the entry and write
// it: whatever it is (a tee of cores at different levels, a sampler) decides as it would
// unwrapped, and each of its cores writes only what it took.
func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = c.r.String(e.Message)
	e.Stack = c.r.String(e.Stack)
	if ce := c.Core.Check(e, nil); ce != nil {
		ce.Write(c.r.fields(fields)...)
	}
	return nil
}

// fields returns fields with every field that holds a secret replaced. It returns the slice
// itself when no field changes.
func (r *Redactor) fields(fields []zapcore.Field) []zapcore.Field {
	if len(r.load().strs) == 0 {
		return fields
	}
	var out []zapcore.Field // a copy, made on the first change: the caller's slice is never written
	for i, f := range fields {
		g, changed := r.field(f)
		if !changed {
			continue
		}
		if out == nil {
			out = slices.Clone(fields)
		}
		out[i] = g
	}
	if out == nil {
		return fields
	}
	return out
}

// field returns f scrubbed, and whether it had to change.
func (r *Redactor) field(f zapcore.Field) (zapcore.Field, bool) {
	key := r.String(f.Key)
	switch f.Type {
	case zapcore.StringType:
		if s := r.String(f.String); s != f.String || key != f.Key {
			return zapcore.Field{Key: key, Type: zapcore.StringType, String: s}, true
		}
		return f, false
	case zapcore.ByteStringType, zapcore.BinaryType:
		b, _ := f.Interface.([]byte)
		if r.containsBytes(b) || key != f.Key {
			return zapcore.Field{Key: key, Type: f.Type, Interface: r.Bytes(b)}, true
		}
		return f, false
	case zapcore.ErrorType:
		err, _ := f.Interface.(error)
		if err == nil {
			return f, false
		}
		msg := safeText(err.Error)
		verbose := ""
		if _, ok := err.(fmt.Formatter); ok {
			verbose = safeText(func() string { return fmt.Sprintf("%+v", err) })
		}
		if r.Contains(msg) || r.Contains(verbose) || key != f.Key {
			return zapcore.Field{Key: key, Type: zapcore.StringType, String: r.String(msg)}, true
		}
		return f, false
	case zapcore.StringerType:
		st, _ := f.Interface.(fmt.Stringer)
		if st == nil {
			return f, false
		}
		if s := safeText(st.String); r.Contains(s) || key != f.Key {
			return zapcore.Field{Key: key, Type: zapcore.StringType, String: r.String(s)}, true
		}
		return f, false
	case zapcore.ArrayMarshalerType, zapcore.ObjectMarshalerType, zapcore.InlineMarshalerType, zapcore.ReflectType:
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		changed := key != f.Key
		for k, v := range enc.Fields {
			if nv, ok := r.value(v); ok {
				enc.Fields[k], changed = nv, true
			}
			if rk := r.String(k); rk != k {
				enc.Fields[rk] = enc.Fields[k]
				delete(enc.Fields, k)
				changed = true
			}
		}
		if !changed {
			return f, false
		}
		if f.Type == zapcore.InlineMarshalerType {
			return zapcore.Field{Type: zapcore.InlineMarshalerType, Interface: mapObject(enc.Fields)}, true
		}
		// MapObjectEncoder stored the value under the field's (unscrubbed) key.
		v := enc.Fields[r.String(f.Key)]
		return zapcore.Field{Key: key, Type: zapcore.ReflectType, Interface: v}, true
	}
	// Numbers, booleans, times, durations, namespaces and skipped fields carry no text (a
	// namespace's key is checked like any key).
	if key != f.Key {
		f.Key = key
		return f, true
	}
	return f, false
}

// value scrubs a value produced by zapcore.MapObjectEncoder: strings, []byte, maps and slices of
// those, scalars, and reflected values of any type (checked through their JSON encoding, as the
// JSON encoder would write them). It returns the replacement and whether one was needed. Maps
// and slices are fresh copies made by the encoder and are scrubbed in place.
func (r *Redactor) value(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64, complex64, complex128, time.Time, time.Duration:
		return v, false
	case string:
		if s := r.String(x); s != x {
			return s, true
		}
		return v, false
	case []byte:
		if r.containsBytes(x) {
			return r.Bytes(x), true
		}
		return v, false
	case map[string]any:
		changed := false
		for k, e := range x {
			if ne, ok := r.value(e); ok {
				x[k], changed = ne, true
			}
			if rk := r.String(k); rk != k {
				x[rk] = x[k]
				delete(x, k)
				changed = true
			}
		}
		return v, changed
	case []any:
		changed := false
		for i, e := range x {
			if ne, ok := r.value(e); ok {
				x[i], changed = ne, true
			}
		}
		return v, changed
	}
	// A reflected value: look at it the way the JSON encoder will print it.
	var text string
	if b, err := json.Marshal(v); err == nil {
		text = string(b)
	} else {
		text = safeText(func() string { return fmt.Sprintf("%+v", v) })
	}
	if r.Contains(text) {
		return r.String(text), true
	}
	return v, false
}

// mapObject re-emits scrubbed inline fields.
type mapObject map[string]any

func (m mapObject) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for k, v := range m {
		if err := enc.AddReflected(k, v); err != nil {
			return err
		}
	}
	return nil
}

// safeText calls f, turning a panic (a nil pointer's Error or String method, say) into a marker
// instead of crashing the logger; zap itself reports such panics in the field's place.
func safeText(f func() string) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = fmt.Sprintf("PANIC=%v", p)
		}
	}()
	return f()
}
