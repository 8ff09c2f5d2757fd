//go:build tools

// Package deps pins modules that later code imports, so `go mod tidy` keeps them
// while the packages that use them are being written. It is never built.
package deps

import (
	_ "github.com/go-chi/chi/v5"
	_ "github.com/go-redis/redis_rate/v10"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/openai/openai-go/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "go.uber.org/zap"
	_ "golang.org/x/image/webp"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
