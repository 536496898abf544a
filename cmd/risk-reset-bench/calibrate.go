package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// fakeCosts are the median round trips, from a client in this process, of
// the fake calls the bot makes between an approval click and its thread
// reply: users.info (re-authorizing the approver), chat.update twice (card
// "resetting…" and card final), chat.postMessage (audit record) and one
// Cloudflare read (verifying the reset). Subtracting them from the bot's
// time per request estimates what the bot itself spends.
type fakeCosts struct {
	usersInfo, chatUpdate, postMessage, cloudflareRead time.Duration
}

func (c fakeCosts) onApprovalPath() time.Duration {
	return c.usersInfo + 2*c.chatUpdate + c.postMessage + c.cloudflareRead
}

// calibrate times n of each call against the fakes, using tg's finished
// card and audit record as the payloads, so they weigh what the bot sends.
func (r *rig) calibrate(ctx context.Context, n int, tg target) (fakeCosts, error) {
	msgs, audit := r.slack.Messages(tg.channel), r.slack.Messages(auditChannel)
	if len(msgs) == 0 || len(audit) == 0 {
		return fakeCosts{}, fmt.Errorf("no card in %s or no audit record to calibrate with", tg.channel)
	}
	card := msgs[0] // the card as it ended, its buttons replaced by the outcome
	slackCall := func(method string, form url.Values) func() error {
		return func() error { return r.postSlack(ctx, method, form) }
	}
	var costs fakeCosts
	var err error
	steps := []struct {
		into *time.Duration
		call func() error
	}{
		{&costs.usersInfo, slackCall("users.info", url.Values{"user": {lead}})},
		{&costs.chatUpdate, slackCall("chat.update", url.Values{"channel": {tg.channel}, "ts": {card.TS}, "text": {card.Text}, "blocks": {string(card.Blocks)}})},
		{&costs.postMessage, slackCall("chat.postMessage", url.Values{"channel": {calibrationChannel}, "text": {audit[len(audit)-1].Text}})},
		{&costs.cloudflareRead, func() error { return r.getCloudflare(ctx, "/accounts/"+accountID+"/zt_risk_scoring/"+tg.userID) }},
	}
	for _, s := range steps {
		if *s.into, err = median(n, s.call); err != nil {
			return fakeCosts{}, err
		}
	}
	return costs, nil
}

func median(n int, call func() error) (time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for range n {
		began := time.Now()
		if err := call(); err != nil {
			return 0, err
		}
		d = append(d, time.Since(began))
	}
	return percentile(d, 50), nil
}

func (r *rig) postSlack(ctx context.Context, method string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.slack.APIURL()+method, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.slack.BotToken())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return roundTrip(req, `"ok":true`)
}

func (r *rig) getCloudflare(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cfToken)
	return roundTrip(req, `"success":true`)
}

// roundTrip sends req and checks the answer contains want.
func roundTrip(req *http.Request, want string) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(body), want) {
		return fmt.Errorf("%s: HTTP %d %.200s (%v)", req.URL.Path, resp.StatusCode, body, err)
	}
	return nil
}
