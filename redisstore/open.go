package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis at redisURL (redis:// or rediss:// for TLS,
// as redis.ParseURL reads them) and checks that it answers. Its errors
// never contain the URL's password (nor its user name, when the URL has no
// password, as that is then likely the password).
func Open(ctx context.Context, redisURL string, opts Options) (*Store, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("redisstore: REDIS_URL is not a valid URL (details withheld: it may hold a password)")
	}
	// Some URLs carry the password where the user name goes.
	secret, ok := u.User.Password()
	if !ok {
		secret = u.User.Username()
	}
	// Name the server without its user info or options.
	where := (&url.URL{Scheme: u.Scheme, Host: scrub(u.Host, secret), Path: scrub(u.Path, secret)}).String()

	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse %s: %w", where, scrubError(err, secret))
	}
	routeLibraryLogs(opts.Log, secret)
	client := redis.NewClient(o)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisstore: connect to %s: %w", where, scrubError(err, secret))
	}
	return New(client, opts), nil
}

// scrubError returns err, or an error of its text without secret when the
// text holds it. That error no longer wraps err: keeping the password
// out matters more than errors.Is.
func scrubError(err error, secret string) error {
	if msg := err.Error(); scrub(msg, secret) != msg {
		return errors.New(scrub(msg, secret))
	}
	return err
}

// scrub returns s with secret, as typed or escaped, replaced.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, p := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}
