package bot

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"risk-reset-bot/authz"
	"risk-reset-bot/internal/metrics"
	"risk-reset-bot/internal/slackfake"
	"risk-reset-bot/request"
)

// ctxStore fails a write whose context has ended, as Redis does.
type ctxStore struct{ request.Store }

func (s ctxStore) Update(ctx context.Context, id string, fn func(*request.Request) error) (*request.Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Store.Update(ctx, id, fn)
}

// endAfter ends a handler's context once Slack's answer to method is in
// hand, as a handler's time running out during a slow post does.
type endAfter struct {
	method string
	end    context.CancelFunc
}

func (t endAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/"+t.method) {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.end()
	return resp, nil
}

// TestPostCardBookkeepingOutlivesTheHandler: after the card's post used up
// the handler's time, what the post left to record is still written: the
// card's ts (so the card's buttons can be retired), or the end of a
// request whose card could not be posted (so it does not block its target
// until it expires).
func TestPostCardBookkeepingOutlivesTheHandler(t *testing.T) {
	tests := []struct {
		name    string
		channel string
		check   func(t *testing.T, r *request.Request)
	}{
		{name: "card posted", channel: "CMEMBER", check: func(t *testing.T, r *request.Request) {
			if r.CardTS == "" || r.State != request.StatePending {
				t.Errorf("request after its card was posted: state %s, card ts %q; want pending with the card's ts", r.State, r.CardTS)
			}
		}},
		{name: "card refused", channel: "COUTSIDER", check: func(t *testing.T, r *request.Request) {
			if r.State != request.StateFailed {
				t.Errorf("request whose card could not be posted is %s, want failed", r.State)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := slackfake.New(t)
			fake.AddChannel(slackfake.Channel{ID: "CMEMBER", Name: "soc-ops", BotIsMember: true})
			fake.AddChannel(slackfake.Channel{ID: "COUTSIDER", Name: "random"})
			handler, end := context.WithCancel(context.Background())
			defer end()
			store := ctxStore{request.NewMemStore(time.Now, time.Hour)}
			b := New(Config{
				BotToken: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL(),
				HTTPClient: &http.Client{Transport: endAfter{method: "chat.postMessage", end: end}},
			}, Deps{
				Store: store, Log: zerolog.Nop(), Metrics: metrics.New("test", func() float64 { return 0 }), Now: time.Now,
				Policy: authz.New(authz.Config{Approvers: []string{"ULEAD"}}, nil, 0, time.Now),
			})
			req := request.New(request.Draft{
				Requester: "UREQ", ChannelID: tt.channel, RequiredApprovals: 1,
				Target: request.Target{UserID: "f2108713-1206-4e84-8b80-0e71a6a1c67b", Email: "alice@example.com"},
			}, time.Now(), time.Hour)
			if err := store.Create(context.Background(), req); err != nil {
				t.Fatal(err)
			}

			b.postCard(handler, zerolog.Nop(), req, func(string) {})

			if handler.Err() == nil {
				t.Fatal("the handler's context did not end during the post; the test did not test anything")
			}
			got, err := store.Get(context.Background(), req.ID)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}
