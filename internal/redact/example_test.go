package redact_test

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/imagegw/imagegw/internal/redact"
)

// One Redactor per process knows every configured secret; the root logger's core is wrapped
// once, and client-facing messages go through String.
func Example() {
	r := redact.New("sk-upstream-key-0123456789", "admin-token-abcdefgh")

	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"})
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(os.Stdout), zap.DebugLevel))
	log = log.WithOptions(zap.WrapCore(r.Core))
	log.Warn("upstream error", zap.Error(fmt.Errorf("upstream said: bad key sk-upstream-key-0123456789")))

	fmt.Println(r.String("Bearer admin-token-abcdefgh"))
	// Output:
	// {"msg":"upstream error","error":"upstream said: bad key [redacted]"}
	// Bearer [redacted]
}
