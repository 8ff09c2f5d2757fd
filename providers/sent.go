package providers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http/httptrace"
	"sync/atomic"
)

// Idempotent is implemented by adapters that can tell when a call may be sent again after its
// answer broke off (AfterSend): the upstream generates and bills it at most once however often
// it is sent (an idempotency key it honours), or does not bill it at all. It is optional, found by
// type assertion like Editor; without it a broken-off call is never sent again, because the first
// upstream may already have made (and charged for) the images.
type Idempotent interface {
	// Idempotent reports whether req (Model already the upstream id) may be sent again, on this
	// channel or another, after its answer broke off.
	Idempotent(req *Request) bool
}

// sendWatch records whether a request was written to an upstream in full, through its trace.
type sendWatch struct {
	wrote atomic.Bool
	trace httptrace.ClientTrace
}

func (w *sendWatch) wroteRequest(i httptrace.WroteRequestInfo) {
	if i.Err == nil {
		w.wrote.Store(true)
	}
}

func (w *sendWatch) gotFirstResponseByte() { w.wrote.Store(true) }

type sendWatchKey struct{}

// WatchSend returns ctx with an HTTP client trace that notes when a request sent with it has
// been written to its upstream in full (httptrace WroteRequest without an error), or the upstream
// began to answer it. Do installs one
// around every call; TransportError reads it to tell a failure before the request left (a refused
// connection, DNS, a TLS handshake: nothing can have been generated) from one after.
func WatchSend(ctx context.Context) context.Context {
	w := &sendWatch{} // the watch and its trace in one allocation
	w.trace.WroteRequest = w.wroteRequest
	// An upstream that began to answer had the request, even one that answered before reading
	// all of its body.
	w.trace.GotFirstResponseByte = w.gotFirstResponseByte
	ctx = context.WithValue(ctx, sendWatchKey{}, w)
	return httptrace.WithClientTrace(ctx, &w.trace)
}

// Sent reports whether a request made with ctx (or a context derived from it) was written to an
// upstream in full; known is false when ctx carries no watch (see WatchSend).
func Sent(ctx context.Context) (sent, known bool) {
	w, ok := ctx.Value(sendWatchKey{}).(*sendWatch)
	if !ok {
		return false, false
	}
	return w.wrote.Load(), true
}

// afterSend reports whether a transport failure err of a call on ctx may have come after the
// upstream got the request: what the watch saw when there is one, else every failure but those
// that end a call before any byte of it is sent.
func afterSend(ctx context.Context, err error) bool {
	if sent, known := Sent(ctx); known {
		return sent
	}
	return !beforeSend(err)
}

// beforeSend reports whether err ends a call before its request can have been sent: a DNS
// failure, a refused or unreachable dial, a failed TLS handshake.
func beforeSend(err error) bool {
	var (
		dns   *net.DNSError
		op    *net.OpError
		rec   tls.RecordHeaderError
		alert tls.AlertError
		cert  *tls.CertificateVerificationError
		ua    x509.UnknownAuthorityError
		host  x509.HostnameError
		inv   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &dns):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	case errors.As(err, &rec), errors.As(err, &alert), errors.As(err, &cert), errors.As(err, &ua),
		errors.As(err, &host), errors.As(err, &inv):
		return true
	}
	return false
}
