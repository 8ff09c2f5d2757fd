package backend

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/store/postgres"
	"github.com/imagegw/imagegw/internal/store/sqlite"
)

// DefaultSQLitePath is where the store lives when no database URL is configured.
const DefaultSQLitePath = "./data/imagegw.db"

// Kinds of store a URL names.
const (
	KindSQLite   = "sqlite"
	KindPostgres = "postgres"
)

// Parse says which store url names and what to open: for SQLite the file path (":memory:" for
// a private in-memory database), for Postgres the URL itself. Accepted forms:
//
//	""                                   SQLite at DefaultSQLitePath
//	sqlite:PATH, sqlite://PATH, file:PATH SQLite at PATH (sqlite:///abs/path is absolute)
//	postgres://…, postgresql://…         Postgres
func Parse(url string) (kind, target string, err error) {
	lower := strings.ToLower(url)
	var path string
	switch {
	case url == "":
		return KindSQLite, DefaultSQLitePath, nil
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return KindPostgres, url, nil
	case strings.HasPrefix(lower, "sqlite://"):
		path = url[len("sqlite://"):]
	case strings.HasPrefix(lower, "sqlite:"):
		path = url[len("sqlite:"):]
	case strings.HasPrefix(lower, "file://"):
		path = url[len("file://"):]
	case strings.HasPrefix(lower, "file:"):
		path = url[len("file:"):]
	default:
		hint := ""
		if !strings.Contains(url, "://") {
			hint = fmt.Sprintf(" (for a SQLite file, write %q)", "sqlite:"+url)
		}
		return "", "", fmt.Errorf("store: unsupported database URL %q: want \"sqlite:PATH\" or \"postgres://…\"%s",
			Redact(url), hint)
	}
	if path == "" {
		return "", "", fmt.Errorf("store: database URL %q has no path", url)
	}
	if strings.ContainsAny(path, "?#") {
		return "", "", fmt.Errorf("store: database URL %q: SQLite URLs take no query or fragment", url)
	}
	return KindSQLite, path, nil
}

// Open opens the store url names (see Parse). It does not migrate: call Migrate.
func Open(ctx context.Context, url string) (store.Store, error) {
	kind, target, err := Parse(url)
	if err != nil {
		return nil, err
	}
	if kind == KindPostgres {
		s, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, target)
	if err != nil {
		return nil, err
	}
	return s, nil
}

const mask = "xxxxx"

var (
	// userinfoPassword is the password of scheme://user:password@host, found without parsing,
	// so it also matches URLs that net/url rejects (an unescaped '/', '#' or '@' in the
	// password): everything from the first ':' after the user to the last '@'.
	userinfoPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:)(.*)@`)
	// paramPassword is a password given as a query parameter (?password=…) or in a
	// keyword/value connection string (password=… or password='…').
	paramPassword = regexp.MustCompile(`(?i)(^|[?&\s])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)`)
)

// Redact hides the passwords in a database URL or keyword/value connection string, for logs
// and error messages: "postgres://app:s3cret@db/imagegw" becomes "postgres://app:xxxxx@db/imagegw".
func Redact(url string) string {
	s := userinfoPassword.ReplaceAllString(url, "${1}"+mask+"@")
	return paramPassword.ReplaceAllString(s, "${1}${2}"+mask)
}
