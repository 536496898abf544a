package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSlackTransportCountsErrorsAndKeepsTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch r.URL.Path {
		case "/api/chat.postMessage":
			io.WriteString(w, `{"ok":false,"error":"not_in_channel"}`)
		case "/api/chat.update":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	defer srv.Close()
	m := New("test", func() float64 { return 0 })
	client := &http.Client{Transport: m.SlackTransport(http.DefaultTransport, nil)}

	for _, path := range []string{"/api/chat.postMessage", "/api/chat.update", "/api/auth.test", "/commands/T1/1/secret"} {
		resp, err := client.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/api/chat.postMessage" && !strings.Contains(string(body), "not_in_channel") {
			t.Errorf("the caller lost the body: %q", body)
		}
	}
	if got := testutil.ToFloat64(m.SlackAPIErrors.WithLabelValues("chat.postMessage", "not_in_channel")); got != 1 {
		t.Errorf("not_in_channel counted %v times, want 1", got)
	}
	if got := testutil.ToFloat64(m.SlackAPIErrors.WithLabelValues("chat.update", "ratelimited")); got != 1 {
		t.Errorf("429 counted %v times, want 1", got)
	}
	if got := testutil.CollectAndCount(m.SlackAPIErrors); got != 2 {
		t.Errorf("%d error series, want 2 (successes and response_url posts that succeeded are not errors)", got)
	}
}

func TestCloudflareLabelsAreBounded(t *testing.T) {
	for code, want := range map[int]string{0: "none", 10000: "10000", 7003: "7003", 123456: "other"} {
		if got := CFCode(code); got != want {
			t.Errorf("CFCode(%d) = %q, want %q", code, got, want)
		}
	}
	for path, want := range map[string]string{
		"/client/v4/accounts/a/zt_risk_scoring/u/reset": "reset",
		"/client/v4/accounts/a/zt_risk_scoring/u":       "user_risk",
		"/client/v4/accounts/a/access/users":            "list_users",
		"/client/v4/user/tokens/verify":                 "verify_token",
		"/client/v4/somewhere/else":                     "other",
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if got := cloudflareOperation(r); got != want {
			t.Errorf("cloudflareOperation(%s) = %q, want %q", path, got, want)
		}
	}
}
