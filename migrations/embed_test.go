package migrations

import (
	"testing"
	"testing/fstest"
)

func TestEmbeddedMigrationsMatch(t *testing.T) {
	pg, err := Load(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := Load(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 {
		t.Fatal("no Postgres migrations embedded")
	}
	if len(pg) != len(lite) {
		t.Fatalf("%d Postgres migrations but %d SQLite ones: add every change to both", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].Version != i+1 || lite[i].Version != i+1 {
			t.Errorf("migration %d: versions %d (postgres) and %d (sqlite); want %d, without gaps", i, pg[i].Version, lite[i].Version, i+1)
		}
		if pg[i].Name != lite[i].Name {
			t.Errorf("migration %d: names %q (postgres) and %q (sqlite) differ", i, pg[i].Name, lite[i].Name)
		}
	}
}

func TestLoad(t *testing.T) {
	ms, err := Load(fstest.MapFS{
		"0010_later.sql": {Data: []byte("B")},
		"0002_next.sql":  {Data: []byte("A")},
		"README.md":      {Data: []byte("ignored")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 2 || ms[1].Version != 10 || ms[0].SQL != "A" || ms[1].Name != "0010_later.sql" {
		t.Fatalf("Load = %+v", ms)
	}

	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"init.sql": {}},
		"zero":      {"0000_init.sql": {}},
		"duplicate": {"0001_a.sql": {}, "001_b.sql": {}},
	} {
		if _, err := Load(fsys); err == nil {
			t.Errorf("%s: Load succeeded, want an error", name)
		}
	}
}
