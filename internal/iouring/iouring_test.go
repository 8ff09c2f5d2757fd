package iouring

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

func newSyncer(t testing.TB) *Syncer {
	t.Helper()
	s, err := New()
	if err != nil {
		if runtime.GOOS == "linux" && os.Getenv("CI") == "true" { // CI's kernel has it: a failing New is a bug, not a skip
			t.Fatalf("io_uring unavailable on CI's Linux: %v", err)
		}
		t.Skip("io_uring unavailable (the journal falls back to fdatasync):", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestDatasync(t *testing.T) {
	s := newSyncer(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 20 {
		if _, err := f.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.Datasync(f); err != nil {
			t.Fatalf("datasync %d: %v", i, err)
		}
	}
}

// The flush's own failure comes back as the errno fdatasync would give, not as a ring failure
// (which would fall back to fdatasync and give the same errno the slow way).
func TestDatasyncReportsTheFlushError(t *testing.T) {
	s := newSyncer(t)
	r, w, err := os.Pipe() // fdatasync of a pipe: EINVAL
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	want := syscall.Fdatasync(int(w.Fd()))
	if want == nil {
		t.Skip("this kernel flushes pipes")
	}
	got := s.Datasync(w)
	if !errors.Is(got, want) {
		t.Fatalf("Datasync of a pipe = %v; fdatasync gives %v", got, want)
	}
	// The ring still works after a failed flush.
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Datasync(f); err != nil {
		t.Fatal(err)
	}
}

func TestDatasyncConcurrentAndClose(t *testing.T) {
	s := newSyncer(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			f, err := os.Create(filepath.Join(dir, string(rune('a'+g))))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for range 50 {
				if _, err := f.Write([]byte("x")); err != nil {
					errs <- err
					return
				}
				if err := s.Datasync(f); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	f, err := os.Create(filepath.Join(dir, "after"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Datasync(f); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Datasync after Close = %v; want os.ErrClosed", err)
	}
}

// BenchmarkDatasync: one 400-byte write and its flush, by fdatasync and through the ring. The
// ring's is slower by its hops (an async worker, the eventfd, the poller): it pays off only
// while the cores are busy, which is when the journal uses it.
func BenchmarkDatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"fdatasync", "ring"} {
		b.Run(mode, func(b *testing.B) {
			flush := func(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
			if mode == "ring" {
				flush = newSyncer(b).Datasync
			}
			line := make([]byte, 400)
			for i := 0; b.Loop(); i++ {
				if _, err := f.WriteAt(line, int64(i%2000)*400); err != nil {
					b.Fatal(err)
				}
				if err := flush(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
