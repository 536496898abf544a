package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// healthServer answers /healthz with status and counts the probes.
func healthServer(t *testing.T, status int) (addr string, probes *atomic.Int32) {
	t.Helper()
	n := &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/healthz" {
			t.Errorf("healthcheck sent %s %s, want GET /healthz", r.Method, r.URL.Path)
		}
		n.Add(1)
		w.WriteHeader(status)
		_, _ = w.Write([]byte("not ready: socket mode disconnected"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), n
}

func TestHealthcheckPassesOn200WithOnlyHTTPAddrSet(t *testing.T) {
	addr, probes := healthServer(t, http.StatusOK)
	var out bytes.Buffer
	// No tokens: the healthcheck must not need the bot's configuration.
	err := run(context.Background(), []string{"healthcheck"}, []string{"HTTP_ADDR=" + addr}, &out)
	if err != nil {
		t.Fatalf("healthcheck against a healthy server: %v", err)
	}
	if probes.Load() != 1 {
		t.Errorf("server probed %d times, want 1", probes.Load())
	}
	if !strings.Contains(out.String(), "healthy") {
		t.Errorf("output %q does not say healthy", out.String())
	}
}

func TestHealthcheckDialsLoopbackForAnEmptyHost(t *testing.T) {
	addr, probes := healthServer(t, http.StatusOK)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := runHealthcheck(context.Background(), []string{"HTTP_ADDR=:" + port}, &bytes.Buffer{}); err != nil {
		t.Fatalf("healthcheck with HTTP_ADDR=:%s: %v", port, err)
	}
	if probes.Load() != 1 {
		t.Errorf("server probed %d times, want 1", probes.Load())
	}
}

func TestHealthcheckFailsOnAnUnhealthyServer(t *testing.T) {
	addr, _ := healthServer(t, http.StatusServiceUnavailable)
	err := runHealthcheck(context.Background(), []string{"HTTP_ADDR=" + addr}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck against a 503: err = %v, want an error naming 503", err)
	}
}

func TestHealthcheckFailsWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	err = runHealthcheck(context.Background(), []string{"HTTP_ADDR=" + addr}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("healthcheck against a closed port: err = %v, want an error naming %s", err, addr)
	}
}

func TestHealthcheckGivesUpOnAHungServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	err := probeHealth(context.Background(), srv.URL+"/healthz", 50*time.Millisecond, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("healthcheck against a hung server: err = %v", err)
	}
}

func TestHealthcheckAddress(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"", "127.0.0.1:8080"},
		{":9090", "127.0.0.1:9090"},
		{"0.0.0.0:9090", "127.0.0.1:9090"},
		{"[::]:9090", "[::1]:9090"},
		{"10.0.0.5:9090", "10.0.0.5:9090"},
	} {
		got, err := healthcheckAddr(tc.listen)
		if err != nil || got != tc.want {
			t.Errorf("healthcheckAddr(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
	for _, bad := range []string{"8080", "localhost", ":http", ":0", ":70000"} {
		if _, err := healthcheckAddr(bad); err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") {
			t.Errorf("healthcheckAddr(%q): err = %v, want one naming HTTP_ADDR", bad, err)
		}
	}
}
