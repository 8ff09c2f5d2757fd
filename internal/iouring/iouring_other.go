//go:build !linux

package iouring

import (
	"errors"
	"os"
)

// Syncer is not available on this system; New always fails.
type Syncer struct{}

// New returns errors.ErrUnsupported: io_uring is Linux only.
func New() (*Syncer, error) { return nil, errors.ErrUnsupported }

// Datasync is never called: New fails.
func (s *Syncer) Datasync(f *os.File) error { return errors.ErrUnsupported }

// Close does nothing.
func (s *Syncer) Close() error { return nil }
