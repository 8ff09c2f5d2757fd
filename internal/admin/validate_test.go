package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/sqlite"
	"github.com/imagegw/imagegw/internal/store/storetest"
)

const testToken = "admin-test-token"

// adminServer serves the admin API on st over a real connection.
func adminServer(t *testing.T, st store.Store) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	(&API{Store: st, Auth: auth.New(st, auth.Options{}), Token: testToken, Usage: UsageHandler(st, "USD")}).Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

type envelope struct {
	Error *struct {
		Message *string `json:"message"`
		Type    *string `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestMalformedInputIs400 sends every kind of malformed id, name and out-of-range number to the
// admin API, on SQLite and on the real Postgres (whose rejection of NUL bytes and of integers
// past 32 bits used to come back as a 503): each is a 400 in the OpenAI error envelope naming
// the parameter, and the store is never asked.
func TestMalformedInputIs400(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		testMalformed(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.PostgresURL(t)
		st, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		testMalformed(t, st)
	})
}

func testMalformed(t *testing.T, st store.Store) {
	srv := adminServer(t, st)
	// A key to update: the largest legal limits and budget are accepted and kept.
	code, body := call(t, srv, "POST", "/admin/v1/keys",
		`{"name":"team α 🧑‍💻","models":["m1"],"rpm":2147483647,"ipm":0,"mppm":2147483647,"concurrency":1,"budget":"1000000000"}`)
	if code != http.StatusCreated {
		t.Fatalf("create at the bounds: %d %s", code, body)
	}
	var k KeyView
	if err := json.Unmarshal(body, &k); err != nil {
		t.Fatal(err)
	}
	// A markup is set as a decimal (string or number), shown as a string, and cleared with null.
	for _, c := range []struct{ patch, want string }{{`{"markup":"1.25"}`, `"markup": "1.25"`}, {`{"markup":100}`, `"markup": "100"`}, {`{"markup":null}`, `"markup": null`}} {
		if code, body := call(t, srv, "PATCH", "/admin/v1/keys/"+k.ID, c.patch); code != http.StatusOK || !strings.Contains(string(body), c.want) {
			t.Fatalf("PATCH %s: %d %s, want %s", c.patch, code, body, c.want)
		}
	}
	code, body = call(t, srv, "GET", "/admin/v1/keys/"+k.ID, "")
	if code != http.StatusOK || !strings.Contains(string(body), `"rpm": 2147483647`) || !strings.Contains(string(body), `"budget": "1000000000"`) ||
		!strings.Contains(string(body), "team α 🧑‍💻") {
		t.Fatalf("get: %d %s", code, body)
	}

	long := strings.Repeat("n", MaxNameLen+1)
	for _, c := range []struct {
		method, path, body, param string
	}{
		{"POST", "/admin/v1/keys", `{"name":"a\u0000b"}`, "name"},
		{"POST", "/admin/v1/keys", `{"name":"bell\u0007"}`, "name"},
		{"POST", "/admin/v1/keys", `{"name":"line\nbreak"}`, "name"},
		{"POST", "/admin/v1/keys", `{"name":"rtl\u202eoverride"}`, "name"},
		{"POST", "/admin/v1/keys", `{"name":"` + long + `"}`, "name"},
		{"POST", "/admin/v1/keys", `{"name":"ok","models":["m\u0000"]}`, "models"},
		{"POST", "/admin/v1/keys", `{"name":"ok","models":[""]}`, "models"},
		{"POST", "/admin/v1/keys", `{"name":"ok","rpm":2147483648}`, "rpm"},
		{"POST", "/admin/v1/keys", `{"name":"ok","ipm":4294967296}`, "ipm"},
		{"POST", "/admin/v1/keys", `{"name":"ok","mppm":-1}`, "mppm"},
		{"POST", "/admin/v1/keys", `{"name":"ok","concurrency":9223372036854775807}`, "concurrency"},
		{"POST", "/admin/v1/keys", `{"name":"ok","concurrency":99999999999999999999}`, "concurrency"},
		{"POST", "/admin/v1/keys", `{"name":"ok","rpm":1e3}`, "rpm"},
		{"POST", "/admin/v1/keys", `{"name":"ok","budget":"1000000000.000001"}`, "budget"},
		{"POST", "/admin/v1/keys", `{"name":"ok","budget":"9999999999999"}`, "budget"},
		{"POST", "/admin/v1/keys", `{"name":"ok","budget":99999999999999999999999}`, "budget"},
		{"POST", "/admin/v1/keys", `{"name":"ok","budget":"-1"}`, "budget"},
		{"POST", "/admin/v1/keys", `{"name":"ok","markup":"0"}`, "markup"},
		{"POST", "/admin/v1/keys", `{"name":"ok","markup":"-1.2"}`, "markup"},
		{"POST", "/admin/v1/keys", `{"name":"ok","markup":"100.000001"}`, "markup"},
		{"POST", "/admin/v1/keys", `{"name":"ok","markup":"a lot"}`, "markup"},
		{"PATCH", "/admin/v1/keys/" + k.ID, `{"markup":true}`, "markup"},
		{"PATCH", "/admin/v1/keys/" + k.ID, `{"rpm":2147483648}`, "rpm"},
		{"PATCH", "/admin/v1/keys/" + k.ID, `{"name":"x\u0000"}`, "name"},
		{"PATCH", "/admin/v1/keys/" + k.ID, `{"models":["ok","\u0001"]}`, "models"},
		{"PATCH", "/admin/v1/keys/key%00x", `{"rpm":1}`, "id"},
		{"GET", "/admin/v1/keys/key%00x", "", "id"},
		{"GET", "/admin/v1/keys/key%1bx", "", "id"},
		{"GET", "/admin/v1/keys/key%1Bx", "", "id"},
		{"GET", "/admin/v1/keys/" + strings.Repeat("k", MaxIDLen+1), "", "id"},
		{"GET", "/admin/v1/keys/%ff%fe", "", "id"},
		{"DELETE", "/admin/v1/keys/key%00x", "", "id"},
		{"GET", "/admin/v1/usage?key=key%00x", "", "key"},
		{"GET", "/admin/v1/usage?model=m%00", "", "model"},
		{"GET", "/admin/v1/usage?model=" + strings.Repeat("m", MaxModelLen+1), "", "model"},
	} {
		code, body := call(t, srv, c.method, c.path, c.body)
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil || code != http.StatusBadRequest || env.Error == nil ||
			env.Error.Message == nil || *env.Error.Message == "" || env.Error.Type == nil || *env.Error.Type != "invalid_request_error" ||
			env.Error.Param == nil || *env.Error.Param != c.param || env.Error.Code == nil {
			short := c.body
			if len(short) > 80 {
				short = short[:80] + "…"
			}
			t.Errorf("%s %s %s: %d %s, want 400 naming %q in the envelope", c.method, c.path[:min(len(c.path), 60)], short, code, body, c.param)
		}
	}
	// Well-formed but unknown: 404, not 400.
	if code, body := call(t, srv, "GET", "/admin/v1/keys/key_nosuch", ""); code != http.StatusNotFound {
		t.Errorf("unknown key: %d %s", code, body)
	}
	// Nothing malformed reached the store: the one key is unchanged.
	keys, err := st.ListKeys(t.Context())
	if err != nil || len(keys) != 1 || keys[0].RPM == nil || *keys[0].RPM != MaxLimit || len(keys[0].Models) != 1 {
		t.Fatalf("store after the malformed calls: %v %+v", err, keys)
	}
}

// TestValidateFields covers Fields.Validate on its own, as the CLI (keys create/update) uses it
// on the fields its flags give.
func TestValidateFields(t *testing.T) {
	big, neg, ok := MaxLimit+1, -1, 10
	name, bad := "ok", "bad\x00"
	over := MaxBudget + 1
	models, badModels := []string{"a", "b"}, []string{"a", "\x1b[31m"}
	for _, c := range []struct {
		f     Fields
		param string
	}{
		{Fields{Name: &name, RPM: &ok, Models: &models}, ""},
		{Fields{Name: &bad}, "name"},
		{Fields{RPM: &big}, "rpm"},
		{Fields{IPM: &neg}, "ipm"},
		{Fields{MPPM: &big}, "mppm"},
		{Fields{Concurrency: &big}, "concurrency"},
		{Fields{Budget: &over}, "budget"},
		{Fields{Models: &badModels}, "models"},
	} {
		err := c.f.Validate()
		switch {
		case c.param == "" && err != nil:
			t.Errorf("valid fields: %v", err)
		case c.param != "":
			pe, isPE := err.(interface{ Error() string })
			if err == nil || !isPE || !strings.Contains(pe.Error(), c.param) {
				t.Errorf("want an error naming %s, got %v", c.param, err)
			}
		}
	}
}
