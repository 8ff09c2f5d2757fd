package sqlite

import (
	"path/filepath"
	"testing"
)

// TestWriterCommitsAreDurable: the writer connection commits with synchronous=FULL (2), so a
// ledger batch InsertUsage reported written survives a power loss; the usage journal drops its
// lines on that report. (NORMAL, 1, may roll a WAL commit back after an OS crash.)
func TestWriterCommitsAreDurable(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode string
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q (%v), want wal", mode, err)
	}
	var sync int
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("writer synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
}
