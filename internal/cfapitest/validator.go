// Package cfapitest checks Cloudflare API traffic against Cloudflare's own
// OpenAPI description (the subset in ../shared/cloudflare-openapi-subset.json)
// and provides an in-process fake of the few endpoints the bot calls.
//
// It is imported only by tests. Every request the fake server receives and
// every response it sends is validated, so a client and a fake cannot drift
// away from the real API together.
package cfapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"risk-reset-bot/internal/specs"
)

// SpecEnv names the environment variable that overrides where the OpenAPI
// subset is read from.
const SpecEnv = "CF_OPENAPI_SPEC"

// BasePath is the path prefix of Cloudflare's v4 API; the spec's only server
// is https://api.cloudflare.com/client/v4.
const BasePath = "/client/v4"

// Operation ids. The first four are the spec's; the account token check is
// absent from the 2024 revision and carries the newer spec's id.
const (
	OpResetRisk          = "dlp-zt-risk-score-reset-user"
	OpGetUserRisk        = "dlp-zt-risk-score-user-details"
	OpListUsers          = "zero-trust-users-get-users"
	OpVerifyUserToken    = "user-api-tokens-verify-token"
	OpVerifyAccountToken = "account-api-tokens-verify-token"
)

// specHost is the host of the spec's server. Requests are matched as if sent
// to it, so that the spec's server entry (and its /client/v4 path) is
// enforced instead of replaced.
const specHost = "api.cloudflare.com"

// Validator checks requests and responses against the OpenAPI subset.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

type loadedSpec struct {
	v   *Validator
	err error
}

var (
	specMu    sync.Mutex
	specCache = map[string]loadedSpec{}
)

// NewValidator returns a Validator for the OpenAPI subset. The file is parsed
// once per process. The test fails at once when the file cannot be found or
// loaded: a silently skipped validation would hide contract drift.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	path, err := specPath()
	if err != nil {
		t.Fatalf("cfapitest: %v", err)
	}
	specMu.Lock()
	defer specMu.Unlock()
	loaded, ok := specCache[path]
	if !ok {
		v, err := loadValidator(path)
		loaded = loadedSpec{v: v, err: err}
		specCache[path] = loaded
	}
	if loaded.err != nil {
		t.Fatalf("cfapitest: %v", loaded.err)
	}
	return loaded.v
}

// specPath finds the spec: $CF_OPENAPI_SPEC, else the shared contract
// (see package specs).
func specPath() (string, error) {
	if p := os.Getenv(SpecEnv); p != "" {
		return p, nil
	}
	p, err := specs.Path(specs.CloudflareOpenAPI)
	if err != nil {
		return "", fmt.Errorf("%w (or set %s)", err, SpecEnv)
	}
	return p, nil
}

func loadValidator(path string) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validating %s: %w", path, err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("building a router for %s: %w", path, err)
	}
	for _, name := range []string{schemaIAMSuccess, schemaIAMFailure} {
		if s := doc.Components.Schemas[name]; s == nil || s.Value == nil {
			return nil, fmt.Errorf("%s: schema %s missing", path, name)
		}
	}
	return &Validator{doc: doc, router: router}, nil
}

const (
	schemaIAMSuccess = "iam_response_single_segment"
	schemaIAMFailure = "iam_api-response-common-failure"
)

// accountVerifyPath matches GET /accounts/{account_id}/tokens/verify, which
// the 2024 revision lacks (see x-subset-source known-deltas).
var accountVerifyPath = regexp.MustCompile(`^` + BasePath + `/accounts/([^/]+)/tokens/verify$`)

// CheckRequest fails the test when r does not match the spec. The request
// must be addressed to a path under /client/v4. Its body is read and put
// back, so the request can still be served afterwards.
func (v *Validator) CheckRequest(t testing.TB, r *http.Request) {
	t.Helper()
	for _, err := range v.requestProblems(r) {
		t.Errorf("cfapitest: request %s %s: %v", r.Method, r.URL.Path, err)
	}
}

// CheckResponse fails the test when a response with this status, header and
// body is not what the spec allows for request r.
func (v *Validator) CheckResponse(t testing.TB, r *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	for _, err := range v.responseProblems(r, status, header, body) {
		t.Errorf("cfapitest: response %d to %s %s: %v", status, r.Method, r.URL.Path, err)
	}
}

// OperationID names the operation r is for, or "" when the spec has none.
func (v *Validator) OperationID(r *http.Request) string {
	if accountVerifyPath.MatchString(r.URL.Path) && r.Method == http.MethodGet {
		return OpVerifyAccountToken
	}
	route, _, err := v.route(r)
	if err != nil {
		return ""
	}
	return route.Operation.OperationID
}

func (v *Validator) route(r *http.Request) (*routers.Route, map[string]string, error) {
	clone := r.Clone(context.Background())
	clone.URL = &url.URL{
		Scheme:   "https",
		Host:     specHost,
		Path:     r.URL.Path,
		RawPath:  r.URL.RawPath,
		RawQuery: r.URL.RawQuery,
	}
	return v.router.FindRoute(clone)
}

func (v *Validator) requestProblems(r *http.Request) []error {
	body, err := readAndRestore(r)
	if err != nil {
		return []error{err}
	}
	if m := accountVerifyPath.FindStringSubmatch(r.URL.Path); m != nil {
		return accountVerifyRequestProblems(r, m[1], body)
	}
	route, params, err := v.route(r)
	if err != nil {
		return []error{fmt.Errorf("matches no operation of the spec: %w", err)}
	}
	var problems []error
	scheme, err := authScheme(r.Header)
	if err != nil {
		problems = append(problems, err)
	} else if !schemeAllowed(route, scheme) {
		problems = append(problems, fmt.Errorf("operation %s does not accept %s credentials", route.Operation.OperationID, scheme))
	}
	if len(body) > 0 && route.Operation.RequestBody == nil {
		problems = append(problems, errors.New("has a body but the operation takes none"))
	}
	problems = append(problems, queryProblems(route, r.URL.Query())...)
	input := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			// The spec writes "email AND key AND token" as one security
			// requirement while Cloudflare means any one of them (see
			// x-validation-quirks), so kin-openapi must not judge
			// credentials; authScheme does it instead.
			AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
			RejectWhenRequestBodyNotSpecified: true,
			MultiError:                        true,
		},
	}
	if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
		problems = append(problems, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return problems
}

// accountVerifyRequestProblems checks GET /accounts/{id}/tokens/verify by
// hand against the newer spec's description, because this revision lacks
// the operation: account id as in access_identifier (string, at most 32),
// API token only, no parameters, no body.
func accountVerifyRequestProblems(r *http.Request, account string, body []byte) []error {
	var problems []error
	if r.Method != http.MethodGet {
		problems = append(problems, fmt.Errorf("method %s not allowed", r.Method))
	}
	if account == "" || len(account) > 32 {
		problems = append(problems, fmt.Errorf("account id %q is not an identifier of at most 32 characters", account))
	}
	scheme, err := authScheme(r.Header)
	if err != nil {
		problems = append(problems, err)
	} else if scheme != schemeToken {
		problems = append(problems, fmt.Errorf("token verification accepts only API tokens, got %s credentials", scheme))
	}
	if len(r.URL.Query()) > 0 {
		problems = append(problems, errors.New("takes no query parameters"))
	}
	if len(body) > 0 {
		problems = append(problems, errors.New("has a body but the operation takes none"))
	}
	return problems
}

// Authentication schemes, named as in the spec's securitySchemes.
const (
	schemeToken = "api_token"
	schemeKey   = "api_email+api_key"
)

// authScheme insists on exactly one complete credential scheme: a Bearer
// token, or X-Auth-Email together with X-Auth-Key. Mixed or partial
// credentials are a client bug even when Cloudflare would tolerate them.
func authScheme(h http.Header) (string, error) {
	authz, hasAuthz := h["Authorization"]
	_, hasEmail := h["X-Auth-Email"]
	_, hasKey := h["X-Auth-Key"]
	if _, ok := h["X-Auth-User-Service-Key"]; ok {
		return "", errors.New("sends X-Auth-User-Service-Key, which the bot must never use")
	}
	switch {
	case hasAuthz && (hasEmail || hasKey):
		return "", errors.New("sends both a Bearer token and X-Auth-Email/X-Auth-Key")
	case hasAuthz:
		if len(authz) != 1 {
			return "", errors.New("sends Authorization more than once")
		}
		token, ok := strings.CutPrefix(authz[0], "Bearer ")
		if !ok || token == "" || strings.ContainsAny(token, " \t") {
			return "", errors.New(`Authorization is not "Bearer <token>"`)
		}
		return schemeToken, nil
	case hasEmail && hasKey:
		if len(h["X-Auth-Email"]) != 1 || len(h["X-Auth-Key"]) != 1 {
			return "", errors.New("sends X-Auth-Email or X-Auth-Key more than once")
		}
		if h.Get("X-Auth-Email") == "" || h.Get("X-Auth-Key") == "" {
			return "", errors.New("sends an empty X-Auth-Email or X-Auth-Key")
		}
		return schemeKey, nil
	case hasEmail || hasKey:
		return "", errors.New("sends only one of X-Auth-Email and X-Auth-Key")
	default:
		return "", errors.New("sends no credentials")
	}
}

// schemeAllowed reports whether the operation lists the scheme in any of its
// security requirements. GET access/users lists only email+key in this
// revision although the live API (and the newer spec) accept API tokens, so
// tokens are allowed there too.
func schemeAllowed(route *routers.Route, scheme string) bool {
	if route.Operation.OperationID == OpListUsers && scheme == schemeToken {
		return true
	}
	security := route.Operation.Security
	if security == nil {
		security = &route.Spec.Security
	}
	for _, req := range *security {
		_, token := req["api_token"]
		_, email := req["api_email"]
		_, key := req["api_key"]
		if scheme == schemeToken && token || scheme == schemeKey && email && key {
			return true
		}
	}
	return false
}

// listUsersQuery describes the query parameters of GET access/users in the
// newer spec; this revision declares none, so kin-openapi would pass any.
var listUsersQuery = map[string]func(string) error{
	"email":    nonEmpty,
	"name":     nonEmpty,
	"search":   nonEmpty,
	"page":     positiveInt,
	"per_page": positiveInt,
}

// queryProblems rejects query parameters the operation does not declare:
// kin-openapi validates declared ones only, and a misspelt parameter is
// silently ignored by the real API.
func queryProblems(route *routers.Route, query url.Values) []error {
	var problems []error
	for name, values := range query {
		if route.Operation.OperationID == OpListUsers {
			check, ok := listUsersQuery[name]
			if !ok {
				problems = append(problems, fmt.Errorf("query parameter %q is not one of Cloudflare's", name))
				continue
			}
			if len(values) != 1 {
				problems = append(problems, fmt.Errorf("query parameter %q given %d times", name, len(values)))
				continue
			}
			if err := check(values[0]); err != nil {
				problems = append(problems, fmt.Errorf("query parameter %q: %w", name, err))
			}
			continue
		}
		if route.Operation.Parameters.GetByInAndName(openapi3.ParameterInQuery, name) == nil {
			problems = append(problems, fmt.Errorf("query parameter %q is not declared by %s", name, route.Operation.OperationID))
		}
	}
	return problems
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	return nil
}

func positiveInt(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a positive integer", s)
	}
	return nil
}

func (v *Validator) responseProblems(r *http.Request, status int, header http.Header, body []byte) []error {
	if accountVerifyPath.MatchString(r.URL.Path) {
		// Absent from this revision; the newer spec gives it the same
		// result shape as /user/tokens/verify, so use those schemas.
		if status >= 200 && status < 300 {
			return v.schemaProblems(schemaIAMSuccess, header, body)
		}
		return v.schemaProblems(schemaIAMFailure, header, body)
	}
	route, params, err := v.route(r)
	if err != nil {
		return []error{fmt.Errorf("request matches no operation of the spec: %w", err)}
	}
	if route.Operation.OperationID == OpVerifyUserToken && status >= 400 {
		// The spec's 4XX schema is allOf(success: true, success: false)
		// and matches no body (x-validation-quirks).
		return v.schemaProblems(schemaIAMFailure, header, body)
	}
	if status >= 500 {
		// The spec documents no 5XX bodies, but Cloudflare answers them
		// with the same failure envelope as 4XX; hold fakes to that.
		return v.failureProblems(route, header, body)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    r,
			PathParams: params,
			Route:      route,
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return []error{err}
	}
	return nil
}

// failureProblems validates a body against the operation's 4XX schema.
func (v *Validator) failureProblems(route *routers.Route, header http.Header, body []byte) []error {
	ref := route.Operation.Responses.Status(http.StatusBadRequest)
	if ref == nil || ref.Value == nil {
		return []error{fmt.Errorf("%s documents no failure body", route.Operation.OperationID)}
	}
	media := ref.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return []error{fmt.Errorf("%s documents no JSON failure body", route.Operation.OperationID)}
	}
	return visit(media.Schema.Value, header, body)
}

func (v *Validator) schemaProblems(name string, header http.Header, body []byte) []error {
	return visit(v.doc.Components.Schemas[name].Value, header, body)
}

func visit(schema *openapi3.Schema, header http.Header, body []byte) []error {
	if ct := header.Get("Content-Type"); !isJSON(ct) {
		return []error{fmt.Errorf("Content-Type %q is not application/json", ct)}
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return []error{fmt.Errorf("body is not JSON: %w", err)}
	}
	if err := schema.VisitJSON(value, openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		return []error{err}
	}
	return nil
}

func isJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mediaType), "application/json")
}

func readAndRestore(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
