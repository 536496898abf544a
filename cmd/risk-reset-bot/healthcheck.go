package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// defaultHTTPAddr matches the default of HTTP_ADDR in package config.
const defaultHTTPAddr = ":8080"

// healthcheckTimeout keeps the probe within Docker's HEALTHCHECK timeout.
const healthcheckTimeout = 3 * time.Second

// runHealthcheck is `risk-reset-bot healthcheck`, for Docker's HEALTHCHECK
// in an image without curl: it asks the running bot's /healthz and returns
// nil only on HTTP 200. It reads HTTP_ADDR alone, so it works with none of
// the secrets the bot needs.
func runHealthcheck(ctx context.Context, environ []string, out io.Writer) error {
	addr, err := healthcheckAddr(lookupEnv(environ, "HTTP_ADDR"))
	if err != nil {
		return err
	}
	return probeHealth(ctx, "http://"+addr+"/healthz", healthcheckTimeout, out)
}

// lookupEnv returns the last value of key in environ (later entries win, as
// with exec.Cmd), trimmed.
func lookupEnv(environ []string, key string) string {
	value := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = strings.TrimSpace(v)
		}
	}
	return value
}

// healthcheckAddr turns a listen address into one to dial: an empty or
// wildcard host means the bot listens on every interface, loopback included.
func healthcheckAddr(listen string) (string, error) {
	if listen == "" {
		listen = defaultHTTPAddr
	}
	host, port, err := net.SplitHostPort(listen)
	if n, convErr := strconv.Atoi(port); err != nil || convErr != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("HTTP_ADDR: must be host:port such as \":8080\" (got %q)", listen)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

func probeHealth(ctx context.Context, url string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{
		// The bot is on this host: a proxy from the environment must not
		// answer for it, and a redirect is not a healthy answer.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("healthcheck: GET %s: no answer within %v", url, timeout)
		}
		return fmt.Errorf("healthcheck: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("healthcheck: GET %s: HTTP %d: %q", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(out, "healthy: GET %s: HTTP %d\n", url, resp.StatusCode)
	return nil
}
