package server

import (
	"errors"
	"fmt"

	"go.uber.org/zap/zapcore"
)

// AccessLoggerName names the access log's logger: the server writes one line per request
// ("request") with it, and AccessCore routes its lines.
const AccessLoggerName = "access"

// The access-log modes (log.access): every request, only the failed ones (status 400 and
// above), or none.
const (
	AccessAll    = "all"
	AccessErrors = "errors"
	AccessOff    = "off"
)

// AccessCore returns a core that writes the access log's lines (logger AccessLoggerName) to
// access as mode says, never sampled, and every other line to rest (which may sample). An empty
// mode is AccessAll.
func AccessCore(access, rest zapcore.Core, mode string) (zapcore.Core, error) {
	switch mode {
	case "", AccessAll, AccessErrors, AccessOff:
	default:
		return nil, fmt.Errorf("log.access: %q is not one of all, errors, off", mode)
	}
	return &accessCore{access: access, rest: rest, mode: mode}, nil
}

type accessCore struct {
	access, rest zapcore.Core
	mode         string
}

func (c *accessCore) Enabled(l zapcore.Level) bool { return c.access.Enabled(l) || c.rest.Enabled(l) }

func (c *accessCore) With(fields []zapcore.Field) zapcore.Core {
	return &accessCore{access: c.access.With(fields), rest: c.rest.With(fields), mode: c.mode}
}

// Check sends an access line to Write (which filters by status), anything else to rest.
func (c *accessCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.LoggerName != AccessLoggerName {
		return c.rest.Check(e, ce)
	}
	if c.mode == AccessOff || !c.access.Enabled(e.Level) {
		return ce
	}
	return ce.AddCore(e, c)
}

// Write writes an access line (Check adds c only for those), in errors mode only when its
// status is 400 or above.
func (c *accessCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if c.mode == AccessErrors && !failedRequest(fields) {
		return nil
	}
	return c.access.Write(e, fields)
}

func (c *accessCore) Sync() error {
	if c.access == c.rest {
		return c.access.Sync()
	}
	return errors.Join(c.access.Sync(), c.rest.Sync())
}

// failedRequest reports whether an access line's status is 400 or above.
func failedRequest(fields []zapcore.Field) bool {
	for _, f := range fields {
		if f.Key == "status" && f.Type == zapcore.Int64Type {
			return f.Integer >= 400
		}
	}
	return true // no status: keep it
}
