package usage

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/imagegw/imagegw/internal/money"
)

// appendLine appends l as one journal line (its JSON and '\n') to b. The output is byte for
// byte what json.Encoder with SetEscapeHTML(false) writes for a line (TestAppendLineIsTheJSON
// checks it), without reflection: every request appends two lines, so this is on the hot path.
// Lines are read back with encoding/json.
func appendLine(b []byte, l *line) ([]byte, error) {
	if _, off := l.Time.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 || l.Time.Year() < 0 || l.Time.Year() > 9999 {
		// Times time.Time.MarshalJSON refuses or writes its own way: leave them to it.
		return appendLineJSON(b, l)
	}
	b = append(b, '{')
	if l.Kind != "" {
		b = appendString(append(b, `"j":`...), l.Kind)
		b = append(b, ',')
	}
	if l.Run != "" {
		b = appendString(append(b, `"run":`...), l.Run)
		b = append(b, ',')
	}
	if l.Seq != 0 {
		b = strconv.AppendUint(append(b, `"seq":`...), l.Seq, 10)
		b = append(b, ',')
	}
	b = appendString(append(b, `"request_id":`...), l.RequestID)
	b = append(b, `,"time":"`...)
	b = append(l.Time.AppendFormat(b, time.RFC3339Nano), '"')
	b = appendString(append(b, `,"key_id":`...), l.KeyID)
	b = appendString(append(b, `,"model":`...), l.Model)
	b = appendOptString(b, `,"provider":`, l.Provider)
	b = appendOptString(b, `,"channel":`, l.Channel)
	b = appendOptString(b, `,"operation":`, l.Operation)
	b = strconv.AppendInt(append(b, `,"n_requested":`...), int64(l.NRequested), 10)
	b = strconv.AppendInt(append(b, `,"n_delivered":`...), int64(l.NDelivered), 10)
	b = appendOptInt(b, `,"width":`, int64(l.Width))
	b = appendOptInt(b, `,"height":`, int64(l.Height))
	b = appendOptInt(b, `,"steps":`, int64(l.Steps))
	b = appendAmount(append(b, `,"cost":`...), l.Cost)
	b = appendString(append(b, `,"currency":`...), l.Currency)
	b = appendString(append(b, `,"status":`...), l.Status)
	b = appendOptString(b, `,"error_kind":`, l.ErrorKind)
	b = appendOptInt(b, `,"latency_ms":`, l.LatencyMS)
	b = appendOptInt(b, `,"upstream_ms":`, l.UpstreamMS)
	b = appendOptString(b, `,"slice":`, l.Slice)
	b = appendOptString(b, `,"client_request_id":`, l.ClientID)
	if l.UpstreamCost != 0 {
		b = appendAmount(append(b, `,"upstream_cost":`...), l.UpstreamCost)
	}
	if l.UpstreamListCost != 0 {
		b = appendAmount(append(b, `,"upstream_list_cost":`...), l.UpstreamListCost)
	}
	b = appendOptString(b, `,"upstream_currency":`, l.UpstreamCurrency)
	return append(b, '}', '\n'), nil
}

// appendJSON appends l with encoding/json.
func appendJSON(b []byte, l *line) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf) // Encode ends the value with '\n'
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return b, err
	}
	return buf.Bytes(), nil
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

func appendOptInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendAmount(b []byte, a money.Amount) []byte {
	b = append(b, '"')
	b, _ = a.AppendText(b)
	return append(b, '"')
}

// appendString appends s as a JSON string. Printable ASCII other than '"' and '\' (ids, model
// names, statuses: nearly everything) is copied; anything else is left to encoding/json, so
// escapes and invalid UTF-8 come out exactly as it writes them.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendStringJSON(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringJSON appends s as encoding/json writes it; out of line, so that appendString,
// inlined many times over in appendLine, stays small.
//
//go:noinline
func appendStringJSON(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// appendLineJSON encodes l with encoding/json. A copy goes to encoding/json, so l itself, and
// the line a caller passes, stays off the heap; out of line, so that the copy is not on the
// stack of every append.
//
//go:noinline
func appendLineJSON(b []byte, l *line) ([]byte, error) {
	c := *l
	return appendJSON(b, &c)
}
