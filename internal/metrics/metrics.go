// Package metrics defines the bot's Prometheus metrics. Every label takes
// values from a small, fixed set (results, kinds, operations, status
// classes, error codes), never user IDs or emails, so the series stay
// bounded.
package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors the bot updates.
type Metrics struct {
	registry          *prometheus.Registry
	Commands          *prometheus.CounterVec
	Decisions         *prometheus.CounterVec
	Resets            *prometheus.CounterVec
	CloudflareLatency *prometheus.HistogramVec
	SlackAPIErrors    *prometheus.CounterVec
	Reconnects        prometheus.Counter
}

// New registers the bot's metrics, plus Go runtime and process metrics, in
// a registry of their own. pending reports how many requests are pending.
func New(version string, pending func() float64) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_reset_commands_total",
			Help: "Slash commands handled, by result.",
		}, []string{"result"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_reset_decisions_total",
			Help: "Decisions on requests (clicks and expiry), by kind.",
		}, []string{"kind"}),
		Resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_reset_resets_total",
			Help: "Risk score resets, by result and Cloudflare error code.",
		}, []string{"result", "cf_code"}),
		CloudflareLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "risk_reset_cloudflare_request_duration_seconds",
			Help:    "Latency of Cloudflare API requests, by operation and status class.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"operation", "status"}),
		SlackAPIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "risk_reset_slack_api_errors_total",
			Help: "Slack Web API calls that failed, by method and Slack error code.",
		}, []string{"method", "error"}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "risk_reset_socket_mode_reconnects_total",
			Help: "Socket Mode connections opened after the first.",
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "risk_reset_build_info",
		Help: "Always 1; labels name the build.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.registry.MustRegister(m.Commands, m.Decisions, m.Resets, m.CloudflareLatency, m.SlackAPIErrors, m.Reconnects, buildInfo,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "risk_reset_pending_requests",
			Help: "Requests waiting for a decision.",
		}, pending),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// CFCode turns a Cloudflare error code into a label value: known codes as
// themselves, anything else "other", no code "none".
func CFCode(code int) string {
	switch code {
	case 0:
		return "none"
	case 1000, 1001, 1003, 7003, 9109, 10000, 10429, 10500:
		return strconv.Itoa(code)
	}
	return "other"
}

// CloudflareTransport measures each Cloudflare request.
func (m *Metrics) CloudflareTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.CloudflareLatency.WithLabelValues(cloudflareOperation(r), statusClass(resp, err)).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

func cloudflareOperation(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/reset"):
		return "reset"
	case strings.Contains(p, "/zt_risk_scoring/"):
		return "user_risk"
	case strings.HasSuffix(p, "/access/users"):
		return "list_users"
	case strings.HasSuffix(p, "/tokens/verify"):
		return "verify_token"
	}
	return "other"
}

func statusClass(resp *http.Response, err error) string {
	if err != nil {
		return "error"
	}
	return strconv.Itoa(resp.StatusCode/100) + "xx"
}

// maxSlackBody bounds how much of a Slack answer is read to find its error.
const maxSlackBody = 1 << 20

var (
	slackErrorCode  = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	slackMethodName = regexp.MustCompile(`^[a-z]+(\.[a-zA-Z]+){1,3}$`)
)

// SlackTransport counts failed Slack Web API calls by method and error. It
// reads Slack's JSON answer and hands the same bytes on. Each error code a
// Web API method answers is also passed to observe, when set.
func (m *Metrics) SlackTransport(next http.RoundTripper, observe func(method, code string)) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		method := slackMethod(r)
		resp, err := next.RoundTrip(r)
		switch {
		case err != nil:
			m.SlackAPIErrors.WithLabelValues(method, "connection_error").Inc()
		case resp.StatusCode == http.StatusTooManyRequests:
			m.SlackAPIErrors.WithLabelValues(method, "ratelimited").Inc()
		case resp.StatusCode >= 500:
			m.SlackAPIErrors.WithLabelValues(method, "http_"+strconv.Itoa(resp.StatusCode)).Inc()
		default:
			if code := peekSlackError(resp); code != "" {
				m.SlackAPIErrors.WithLabelValues(method, code).Inc()
				if observe != nil && method != responseURLMethod {
					observe(method, code)
				}
			}
		}
		return resp, err
	})
}

// responseURLMethod is the method label of posts to a response_url.
const responseURLMethod = "response_url"

// slackMethod names the Web API method; webhooks (response_url) are one
// label, whatever their URL.
func slackMethod(r *http.Request) string {
	i := strings.LastIndex(r.URL.Path, "/")
	method := r.URL.Path[i+1:]
	if !strings.Contains(r.URL.Path, "/api/") || !slackMethodName.MatchString(method) {
		return responseURLMethod
	}
	return method
}

func peekSlackError(resp *http.Response) string {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSlackBody))
	// The caller reads the whole answer: what was peeked, then the rest.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	if err != nil {
		return ""
	}
	var env struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.OK == nil || *env.OK {
		return ""
	}
	if !slackErrorCode.MatchString(env.Error) {
		return "other"
	}
	return env.Error
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
