// Package deploy holds the deployment files of imagegw (the Dockerfile, the compose file,
// Kubernetes manifests, the Grafana dashboard and Prometheus rules) and no code. Its tests keep
// those files true to the code: every metric they query is registered by the gateway, the
// Kubernetes configuration file loads with the real config loader, and every IMAGEGW_* (and
// provider) environment variable they set is one the gateway reads.
package deploy
