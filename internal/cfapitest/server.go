package cfapitest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// RecordedRequest is one request the Server received.
type RecordedRequest struct {
	Method string
	// Path is the escaped path as received, including /client/v4.
	Path      string
	Query     url.Values
	Header    http.Header
	Body      []byte
	Operation string    // operation id, "" when the spec has none
	At        time.Time // when it arrived
}

// Server is an httptest server that serves the Cloudflare API under
// /client/v4, validating every request and every response against the spec.
// A request outside /client/v4 fails the test: it means the client ignored
// the path of its base URL.
type Server struct {
	// URL is the API base URL, including /client/v4.
	URL string

	t      testing.TB
	v      *Validator
	h      http.Handler
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	requests []RecordedRequest
}

// NewServer starts a validating server in front of h. It is closed when the
// test ends; handlers still waiting on their request's context are released
// first, and then h is closed if it has a Close method (a FakeAccount stops
// its late effects).
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{t: t, v: NewValidator(t), h: h}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + BasePath
	t.Cleanup(func() {
		s.cancel()
		s.srv.Close()
		if c, ok := h.(interface{ Close() }); ok {
			c.Close()
		}
	})
	return s
}

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Requests returns a copy of the requests received so far, in order.
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RecordedRequest, len(s.requests))
	copy(out, s.requests)
	return out
}

// RequestCount returns how many requests the server received.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Release handlers that wait on the request context when the server
	// closes, so Close never waits on a hung fake.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	r = r.WithContext(ctx)

	body, err := readAndRestore(r)
	if err != nil {
		s.t.Errorf("cfapitest: %v", err)
	}
	s.record(r, body)
	if !strings.HasPrefix(r.URL.Path, BasePath+"/") {
		s.t.Errorf("cfapitest: request %s %s is outside %s: the client ignored its base URL path", r.Method, r.URL.Path, BasePath)
		WriteFailure(w, http.StatusNotFound, 7003, "No route for the URI")
		return
	}
	s.v.CheckRequest(s.t, r)

	rec := &recorder{under: w, header: http.Header{}}
	s.h.ServeHTTP(rec, r)
	if rec.hijacked {
		return
	}
	if rec.status == 0 && ctx.Err() != nil {
		// The handler waited until the client gave up or the server
		// closed (a hang fault): drop the connection rather than let
		// net/http send an empty 200.
		closeConnection(w)
		return
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if !rec.offSpec {
		s.v.CheckResponse(s.t, r, rec.status, rec.header, rec.body.Bytes())
	}
	rec.flush()
}

func (s *Server) record(r *http.Request, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, RecordedRequest{
		Method:    r.Method,
		Path:      r.URL.EscapedPath(),
		Query:     r.URL.Query(),
		Header:    r.Header.Clone(),
		Body:      body,
		Operation: s.v.OperationID(r),
		At:        time.Now(),
	})
}

// MarkOffSpec tells the Server that the response being written through w
// breaks the spec on purpose (an HTML error page, truncated JSON) and must
// not be validated. Every other response is validated.
func MarkOffSpec(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok {
		rec.offSpec = true
	}
}

// recorder buffers a response so it can be validated before it is sent.
type recorder struct {
	under    http.ResponseWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	offSpec  bool
	hijacked bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

// Hijack lets a fault close the connection without any response.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.under.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("cfapitest: connection cannot be hijacked")
	}
	r.hijacked = true
	return h.Hijack()
}

func (r *recorder) flush() {
	for k, v := range r.header {
		r.under.Header()[k] = v
	}
	r.under.WriteHeader(r.status)
	_, _ = io.Copy(r.under, &r.body)
}
