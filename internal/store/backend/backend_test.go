package backend_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagegw/imagegw/internal/store/backend"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url, kind, target string
	}{
		{"", backend.KindSQLite, "./data/imagegw.db"},
		{"sqlite:data/x.db", backend.KindSQLite, "data/x.db"},
		{"sqlite:/var/lib/imagegw/x.db", backend.KindSQLite, "/var/lib/imagegw/x.db"},
		{"sqlite://data/x.db", backend.KindSQLite, "data/x.db"},
		{"sqlite:///var/lib/x.db", backend.KindSQLite, "/var/lib/x.db"},
		{"SQLite:x.db", backend.KindSQLite, "x.db"},
		{"sqlite::memory:", backend.KindSQLite, ":memory:"},
		{"sqlite://:memory:", backend.KindSQLite, ":memory:"},
		{"file:x.db", backend.KindSQLite, "x.db"},
		{"file:///tmp/x.db", backend.KindSQLite, "/tmp/x.db"},
		{"postgres://u:p@db:5432/igw?sslmode=require", backend.KindPostgres, "postgres://u:p@db:5432/igw?sslmode=require"},
		{"postgresql://db/igw", backend.KindPostgres, "postgresql://db/igw"},
	}
	for _, tc := range tests {
		kind, target, err := backend.Parse(tc.url)
		if err != nil || kind != tc.kind || target != tc.target {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tc.url, kind, target, err, tc.kind, tc.target)
		}
	}
	for _, bad := range []string{"mysql://u:hunter2@db/igw", "data/x.db", "sqlite:", "sqlite://", "file:", "sqlite:x.db?mode=ro", "redis://db"} {
		_, _, err := backend.Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", bad)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error leaks the password: %v", bad, err)
		}
	}
	if _, _, err := backend.Parse("data/x.db"); err == nil || !strings.Contains(err.Error(), `"sqlite:data/x.db"`) {
		t.Errorf("Parse(bare path) error = %v; want a hint to write sqlite:data/x.db", err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"sqlite:data/x.db", "sqlite:data/x.db"},
		{"postgres://db/igw", "postgres://db/igw"},
		{"postgres://app@db/igw", "postgres://app@db/igw"},
		{"postgres://app:s3cret@db:5432/igw?sslmode=disable", "postgres://app:xxxxx@db:5432/igw?sslmode=disable"},
		{"postgres://app:p@ss/w#rd@db/igw", "postgres://app:xxxxx@db/igw"},
		{"postgres://:s3cret@db/igw", "postgres://:xxxxx@db/igw"},
		{"postgres://app@db/igw?password=s3cret&sslmode=require", "postgres://app@db/igw?password=xxxxx&sslmode=require"},
		{"postgres://db/igw?sslmode=verify-full&sslpassword=s3cret", "postgres://db/igw?sslmode=verify-full&sslpassword=xxxxx"},
		{"host=db user=app password=s3cret dbname=igw", "host=db user=app password=xxxxx dbname=igw"},
		{"host=db password='s3 cr\\'et' dbname=igw", "host=db password=xxxxx dbname=igw"},
	}
	for _, tc := range tests {
		if got := backend.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	s, err := backend.Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*sqlite.Store); !ok {
		t.Errorf("Open(sqlite:…) returned a %T", s)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

func TestOpenDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := backend.Open(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("data", "imagegw.db")); err != nil {
		t.Errorf("default database file: %v", err)
	}
}

func TestOpenPostgres(t *testing.T) {
	s, err := backend.Open(t.Context(), storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*postgres.Store); !ok {
		t.Errorf("Open(postgres://…) returned a %T", s)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
}
