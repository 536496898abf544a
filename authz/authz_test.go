package authz_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"risk-reset-bot/authz"
)

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

const (
	cacheTTL = 5 * time.Minute

	requester = "UREQ"
	otherReq  = "UREQ2"
	leadA     = "ULEADA"
	leadB     = "WLEADB" // enterprise-grid user IDs start with W
	stranger  = "USTRANGER"

	socGroup   = "SSOC"
	leadsGroup = "SLEADS"
)

// fakeGroups is a Slack that knows some user groups and counts lookups.
type fakeGroups struct {
	mu      sync.Mutex
	members map[string][]string
	errs    map[string]error
	calls   map[string]int
}

func newFakeGroups(members map[string][]string) *fakeGroups {
	return &fakeGroups{members: members, errs: map[string]error{}, calls: map[string]int{}}
}

func (f *fakeGroups) GroupMembers(_ context.Context, groupID string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[groupID]++
	if err := f.errs[groupID]; err != nil {
		return nil, err
	}
	return slices.Clone(f.members[groupID]), nil
}

func (f *fakeGroups) set(groupID string, members ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[groupID] = members
}

func (f *fakeGroups) fail(groupID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[groupID] = err
}

func (f *fakeGroups) lookups(groupID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[groupID]
}

func (f *fakeGroups) totalLookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// fakeClock is the time the policy's cache sees; tests move it instead of
// sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func defaultGroups() *fakeGroups {
	return newFakeGroups(map[string][]string{
		socGroup:   {requester, "USOC2"},
		leadsGroup: {leadB, "ULEAD3"},
	})
}

func newPolicy(cfg authz.Config, groups authz.GroupMembers, ttl time.Duration) (*authz.Policy, *fakeClock) {
	clock := &fakeClock{t: t0}
	return authz.New(cfg, groups, ttl, clock.now), clock
}

// checkDecision asserts err is nil when wantReason is empty, and otherwise a
// refusal with that reason.
func checkDecision(t *testing.T, err error, wantReason authz.Reason) *authz.DeniedError {
	t.Helper()
	if wantReason == "" {
		if err != nil {
			t.Fatalf("refused with %v, want allowed", err)
		}
		return nil
	}
	denied, ok := authz.IsDenied(err)
	if !ok {
		t.Fatalf("error = %v, want a refusal with reason %q", err, wantReason)
	}
	if denied.Reason != wantReason {
		t.Errorf("Reason = %q, want %q (message %q)", denied.Reason, wantReason, denied.Message)
	}
	if denied.Message == "" {
		t.Error("refusal has no message to show")
	}
	return denied
}

func TestCanRequest(t *testing.T) {
	tests := []struct {
		name       string
		cfg        authz.Config
		user       string
		channel    string
		wantReason authz.Reason
	}{
		{name: "nobody configured denies everyone", cfg: authz.Config{}, user: requester, channel: "CSOC", wantReason: authz.NotRequester},
		{name: "nobody configured denies even approvers", cfg: authz.Config{Approvers: []string{leadA}}, user: leadA, channel: "CSOC", wantReason: authz.NotRequester},
		{name: "user listed", cfg: authz.Config{Requesters: []string{requester}}, user: requester, channel: "CSOC"},
		{name: "W user listed", cfg: authz.Config{Requesters: []string{leadB}}, user: leadB, channel: "CSOC"},
		{name: "user not listed", cfg: authz.Config{Requesters: []string{requester}}, user: stranger, channel: "CSOC", wantReason: authz.NotRequester},
		{name: "member of a listed group", cfg: authz.Config{Requesters: []string{socGroup}}, user: requester, channel: "CSOC"},
		{name: "member of the second listed group", cfg: authz.Config{Requesters: []string{socGroup, leadsGroup}}, user: leadB, channel: "CSOC"},
		{name: "not in any listed group", cfg: authz.Config{Requesters: []string{socGroup, leadsGroup}}, user: stranger, channel: "CSOC", wantReason: authz.NotRequester},
		{name: "being an approver does not make a requester", cfg: authz.Config{Requesters: []string{requester}, Approvers: []string{leadA}}, user: leadA, channel: "CSOC", wantReason: authz.NotRequester},
		{name: "allowed channel", cfg: authz.Config{Requesters: []string{requester}, Channels: []string{"CSOC", "CIR"}}, user: requester, channel: "CIR"},
		{name: "wrong channel", cfg: authz.Config{Requesters: []string{requester}, Channels: []string{"CSOC", "CIR"}}, user: requester, channel: "CRANDOM", wantReason: authz.WrongChannel},
		{name: "no channel restriction", cfg: authz.Config{Requesters: []string{requester}}, user: requester, channel: "CRANDOM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPolicy(tt.cfg, defaultGroups(), cacheTTL)
			checkDecision(t, p.CanRequest(context.Background(), tt.user, tt.channel), tt.wantReason)
		})
	}
}

func TestCanRequestWrongChannelNamesAllowedChannels(t *testing.T) {
	tests := []struct {
		channels []string
		want     []string
	}{
		{channels: []string{"CSOC"}, want: []string{"<#CSOC>"}},
		{channels: []string{"CSOC", "CIR"}, want: []string{"<#CSOC>", "<#CIR>"}},
	}
	for _, tt := range tests {
		groups := defaultGroups()
		p, _ := newPolicy(authz.Config{Requesters: []string{socGroup}, Channels: tt.channels}, groups, cacheTTL)
		denied := checkDecision(t, p.CanRequest(context.Background(), requester, "CRANDOM"), authz.WrongChannel)
		for _, w := range tt.want {
			if !strings.Contains(denied.Message, w) {
				t.Errorf("channels %v: message %q does not name %s", tt.channels, denied.Message, w)
			}
		}
		if strings.Contains(denied.Message, "CRANDOM") {
			t.Errorf("message %q names the channel that was refused", denied.Message)
		}
		if n := groups.totalLookups(); n != 0 {
			t.Errorf("wrong channel still looked up %d groups", n)
		}
	}
}

func TestCanApprove(t *testing.T) {
	withApprovers := authz.Config{Requesters: []string{socGroup, leadA}, Approvers: []string{leadA, leadsGroup}}
	selfConfirm := authz.Config{Requesters: []string{socGroup, otherReq}}
	tests := []struct {
		name       string
		cfg        authz.Config
		actor      string
		requester  string
		wantReason authz.Reason
	}{
		{name: "no approvers: requester confirms", cfg: selfConfirm, actor: requester, requester: requester},
		{name: "no approvers: another requester cannot", cfg: selfConfirm, actor: otherReq, requester: requester, wantReason: authz.NotParticipant},
		{name: "no approvers: stranger cannot", cfg: selfConfirm, actor: stranger, requester: requester, wantReason: authz.NotParticipant},
		{name: "listed approver", cfg: withApprovers, actor: leadA, requester: requester},
		{name: "approver through group", cfg: withApprovers, actor: leadB, requester: requester},
		{name: "requester cannot approve", cfg: withApprovers, actor: requester, requester: requester, wantReason: authz.SelfApproval},
		{name: "listed approver cannot approve own request", cfg: withApprovers, actor: leadA, requester: leadA, wantReason: authz.SelfApproval},
		{name: "group approver cannot approve own request", cfg: withApprovers, actor: leadB, requester: leadB, wantReason: authz.SelfApproval},
		{name: "requester-group member is not an approver", cfg: withApprovers, actor: "USOC2", requester: requester, wantReason: authz.NotApprover},
		{name: "stranger", cfg: withApprovers, actor: stranger, requester: requester, wantReason: authz.NotApprover},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPolicy(tt.cfg, defaultGroups(), cacheTTL)
			denied := checkDecision(t, p.CanApprove(context.Background(), tt.actor, openedUnder(p, tt.requester)), tt.wantReason)
			if tt.wantReason == authz.NotParticipant && !strings.Contains(denied.Message, "<@"+tt.requester+">") {
				t.Errorf("message %q does not name the requester <@%s>", denied.Message, tt.requester)
			}
		})
	}
}

// openedUnder returns requester's request as if opened under p's
// configuration, as it is when the configuration has not changed since.
func openedUnder(p *authz.Policy, requester string) authz.Request {
	return authz.Request{Requester: requester, NeedsApprover: p.RequiresApprover()}
}

// TestCanApproveFollowsTheRequestsRule: the configuration may change while
// a request is pending (a restart, a replica configured differently). The
// stricter of the request's own rule and the configuration now applies, so
// a card that said "needs an approver" can never be confirmed by its
// requester.
func TestCanApproveFollowsTheRequestsRule(t *testing.T) {
	withApprovers := authz.Config{Requesters: []string{socGroup, leadA}, Approvers: []string{leadA, leadsGroup}}
	noApprovers := authz.Config{Requesters: []string{socGroup, leadA}}
	tests := []struct {
		name          string
		now           authz.Config
		needsApprover bool
		actor         string
		wantReason    authz.Reason
	}{
		{name: "approvers removed: requester cannot confirm", now: noApprovers, needsApprover: true, actor: requester, wantReason: authz.NoApprovers},
		{name: "approvers removed: former approver cannot approve", now: noApprovers, needsApprover: true, actor: leadA, wantReason: authz.NoApprovers},
		{name: "approvers removed: stranger cannot approve", now: noApprovers, needsApprover: true, actor: stranger, wantReason: authz.NoApprovers},
		{name: "approvers added: requester cannot confirm", now: withApprovers, actor: requester, wantReason: authz.SelfApproval},
		{name: "approvers added: an approver may approve", now: withApprovers, actor: leadB},
		{name: "approvers added: stranger cannot", now: withApprovers, actor: stranger, wantReason: authz.NotApprover},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPolicy(tt.now, defaultGroups(), cacheTTL)
			denied := checkDecision(t, p.CanApprove(context.Background(), tt.actor, authz.Request{Requester: requester, NeedsApprover: tt.needsApprover}), tt.wantReason)
			if denied == nil || denied.Reason == authz.NotApprover {
				return
			}
			if strings.Contains(denied.Message, "another team lead must approve") || !strings.Contains(denied.Message, "configur") {
				t.Errorf("message %q does not say the configuration changed", denied.Message)
			}
			if tt.wantReason == authz.NoApprovers && !strings.Contains(denied.Message, "<@"+requester+"> can cancel") {
				t.Errorf("message %q does not say the requester can still cancel", denied.Message)
			}
		})
	}
}

func TestCanReject(t *testing.T) {
	withApprovers := authz.Config{Requesters: []string{socGroup}, Approvers: []string{leadA, leadsGroup}}
	selfConfirm := authz.Config{Requesters: []string{socGroup, otherReq}}
	tests := []struct {
		name       string
		cfg        authz.Config
		actor      string
		requester  string
		wantReason authz.Reason
	}{
		{name: "requester cancels, with approvers", cfg: withApprovers, actor: requester, requester: requester},
		{name: "requester cancels, without approvers", cfg: selfConfirm, actor: requester, requester: requester},
		{name: "requester no longer listed still cancels", cfg: authz.Config{Approvers: []string{leadA}}, actor: stranger, requester: stranger},
		{name: "listed approver denies", cfg: withApprovers, actor: leadA, requester: requester},
		{name: "group approver denies", cfg: withApprovers, actor: leadB, requester: requester},
		{name: "stranger, with approvers", cfg: withApprovers, actor: stranger, requester: requester, wantReason: authz.NotApprover},
		{name: "another requester, with approvers", cfg: withApprovers, actor: "USOC2", requester: requester, wantReason: authz.NotApprover},
		{name: "another requester, without approvers", cfg: selfConfirm, actor: otherReq, requester: requester, wantReason: authz.NotParticipant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newPolicy(tt.cfg, defaultGroups(), cacheTTL)
			denied := checkDecision(t, p.CanReject(context.Background(), tt.actor, tt.requester), tt.wantReason)
			if tt.wantReason == authz.NotParticipant && !strings.Contains(denied.Message, "<@"+tt.requester+">") {
				t.Errorf("message %q does not name the requester <@%s>", denied.Message, tt.requester)
			}
		})
	}
}

// TestCanApproveSelfConfirmRechecksRequester: without approvers the
// requester's own confirm is what starts the reset, so like every other click
// it must be authorized again; someone removed from the requester group after
// opening a card must not be able to confirm it.
func TestCanApproveSelfConfirmRechecksRequester(t *testing.T) {
	ctx := context.Background()
	groups := defaultGroups()
	p, clock := newPolicy(authz.Config{Requesters: []string{socGroup}}, groups, cacheTTL)
	if err := p.CanRequest(ctx, requester, "CSOC"); err != nil {
		t.Fatalf("CanRequest = %v, want allowed", err)
	}

	groups.set(socGroup, "USOC2")
	clock.t = clock.t.Add(cacheTTL)

	checkDecision(t, p.CanApprove(ctx, requester, openedUnder(p, requester)), authz.NotRequester)
}

func TestRequiresApproverAndApproverLists(t *testing.T) {
	tests := []struct {
		name       string
		approvers  []string
		want       bool
		wantGroups []string
		wantUsers  []string
	}{
		{name: "none", want: false},
		{name: "users only", approvers: []string{leadA, leadB}, want: true, wantUsers: []string{leadA, leadB}},
		{name: "groups only", approvers: []string{leadsGroup}, want: true, wantGroups: []string{leadsGroup}},
		{name: "mixed", approvers: []string{leadA, leadsGroup, leadB, "SOTHER"}, want: true, wantGroups: []string{leadsGroup, "SOTHER"}, wantUsers: []string{leadA, leadB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := authz.Config{Requesters: []string{socGroup}, Approvers: slices.Clone(tt.approvers)}
			p, _ := newPolicy(cfg, defaultGroups(), cacheTTL)
			if got := p.RequiresApprover(); got != tt.want {
				t.Errorf("RequiresApprover() = %v, want %v", got, tt.want)
			}
			// Asked twice and in both orders, so a list that edits the
			// configuration in place shows up.
			for range 2 {
				if got := p.ApproverGroups(); !slices.Equal(got, tt.wantGroups) {
					t.Errorf("ApproverGroups() = %v, want %v", got, tt.wantGroups)
				}
				if got := p.ApproverUsers(); !slices.Equal(got, tt.wantUsers) {
					t.Errorf("ApproverUsers() = %v, want %v", got, tt.wantUsers)
				}
			}
			if !slices.Equal(cfg.Approvers, tt.approvers) {
				t.Errorf("config approvers changed to %v, want %v", cfg.Approvers, tt.approvers)
			}
		})
	}
}

func TestGroupCache(t *testing.T) {
	type step struct {
		advance     time.Duration
		removeFirst bool // take the user out of the group before this check
		wantReason  authz.Reason
		wantLookups int // total lookups of the group after this check
	}
	tests := []struct {
		name  string
		ttl   time.Duration
		steps []step
	}{
		{
			name: "within ttl the cache answers, after it Slack does",
			ttl:  cacheTTL,
			steps: []step{
				{wantLookups: 1},
				{advance: cacheTTL - time.Nanosecond, wantLookups: 1},
				{removeFirst: true, wantLookups: 1}, // still cached: removal not yet seen
				{advance: time.Nanosecond, wantReason: authz.NotApprover, wantLookups: 2},
				{advance: time.Minute, wantReason: authz.NotApprover, wantLookups: 2},
			},
		},
		{
			name: "ttl 0 looks up every time",
			ttl:  0,
			steps: []step{
				{wantLookups: 1},
				{wantLookups: 2},
				{removeFirst: true, wantReason: authz.NotApprover, wantLookups: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			groups := defaultGroups()
			p, clock := newPolicy(authz.Config{Requesters: []string{socGroup}, Approvers: []string{leadsGroup}}, groups, tt.ttl)
			for i, s := range tt.steps {
				clock.t = clock.t.Add(s.advance)
				if s.removeFirst {
					groups.set(leadsGroup, "ULEAD3")
				}
				t.Run(fmt.Sprintf("step %d", i), func(t *testing.T) {
					checkDecision(t, p.CanApprove(ctx, leadB, openedUnder(p, requester)), s.wantReason)
				})
				if got := groups.lookups(leadsGroup); got != s.wantLookups {
					t.Errorf("step %d: %d lookups, want %d", i, got, s.wantLookups)
				}
			}
		})
	}
}

func TestGroupCacheIsPerGroupAndShared(t *testing.T) {
	ctx := context.Background()
	groups := defaultGroups()
	p, _ := newPolicy(authz.Config{Requesters: []string{socGroup}, Approvers: []string{leadsGroup}}, groups, cacheTTL)

	checkDecision(t, p.CanRequest(ctx, requester, "CSOC"), "")
	checkDecision(t, p.CanApprove(ctx, leadB, openedUnder(p, requester)), "")
	checkDecision(t, p.CanReject(ctx, "ULEAD3", requester), "")
	checkDecision(t, p.CanRequest(ctx, "USOC2", "CSOC"), "")

	if a, b := groups.lookups(socGroup), groups.lookups(leadsGroup); a != 1 || b != 1 {
		t.Errorf("lookups: %s %d, %s %d; want one each", socGroup, a, leadsGroup, b)
	}
}

func TestListedUserNeedsNoLookup(t *testing.T) {
	ctx := context.Background()
	groups := defaultGroups()
	groups.fail(leadsGroup, errors.New("slack down"))
	p, _ := newPolicy(authz.Config{Requesters: []string{socGroup, otherReq}, Approvers: []string{leadsGroup, leadA}}, groups, cacheTTL)

	checkDecision(t, p.CanRequest(ctx, otherReq, "CSOC"), "")
	checkDecision(t, p.CanApprove(ctx, leadA, openedUnder(p, requester)), "")
	checkDecision(t, p.CanReject(ctx, leadA, requester), "")
	if n := groups.totalLookups(); n != 0 {
		t.Errorf("%d group lookups for users listed by ID, want 0", n)
	}
}

func TestLookupErrorIsNotADenial(t *testing.T) {
	errSlack := errors.New("slack: ratelimited")
	cfg := authz.Config{Requesters: []string{socGroup}, Approvers: []string{leadsGroup}}
	tests := []struct {
		name   string
		broken string
		check  func(p *authz.Policy) error
	}{
		{"request", socGroup, func(p *authz.Policy) error { return p.CanRequest(context.Background(), requester, "CSOC") }},
		{"request by stranger", socGroup, func(p *authz.Policy) error { return p.CanRequest(context.Background(), stranger, "CSOC") }},
		{"approve", leadsGroup, func(p *authz.Policy) error {
			return p.CanApprove(context.Background(), leadB, openedUnder(p, requester))
		}},
		{"approve by stranger", leadsGroup, func(p *authz.Policy) error {
			return p.CanApprove(context.Background(), stranger, openedUnder(p, requester))
		}},
		{"reject", leadsGroup, func(p *authz.Policy) error { return p.CanReject(context.Background(), leadB, requester) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups := defaultGroups()
			groups.fail(tt.broken, errSlack)
			p, _ := newPolicy(cfg, groups, cacheTTL)

			err := tt.check(p)
			if err == nil {
				t.Fatal("allowed although the group could not be looked up")
			}
			if d, ok := authz.IsDenied(err); ok {
				t.Fatalf("lookup failure reported as refusal %+v", d)
			}
			if !errors.Is(err, errSlack) {
				t.Errorf("error = %v, want it to wrap the lookup error", err)
			}
			if !strings.Contains(err.Error(), tt.broken) {
				t.Errorf("error = %q, want it to name group %s", err, tt.broken)
			}

			// A failure is not cached: once Slack answers, the decision is made.
			groups.fail(tt.broken, nil)
			if err := tt.check(p); err != nil {
				if _, ok := authz.IsDenied(err); !ok {
					t.Errorf("after Slack recovered: %v, want a decision", err)
				}
			}
			if n := groups.lookups(tt.broken); n != 2 {
				t.Errorf("%d lookups of %s, want 2 (the failure must not be cached)", n, tt.broken)
			}
		})
	}
}

func TestLookupErrorInOneGroupMemberOfAnother(t *testing.T) {
	groups := defaultGroups()
	groups.fail(socGroup, errors.New("slack down"))
	p, _ := newPolicy(authz.Config{Approvers: []string{socGroup, leadsGroup}}, groups, cacheTTL)

	checkDecision(t, p.CanApprove(context.Background(), leadB, openedUnder(p, requester)), "")
}

func TestIsDenied(t *testing.T) {
	denial := &authz.DeniedError{Reason: authz.NotApprover, Message: "you are not an approver for risk resets."}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"refusal", denial, true},
		{"wrapped refusal", fmt.Errorf("approving: %w", denial), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := authz.IsDenied(tt.err)
			if ok != tt.want {
				t.Fatalf("IsDenied(%v) ok = %v, want %v", tt.err, ok, tt.want)
			}
			if ok && got != denial {
				t.Errorf("IsDenied returned %+v, want the refusal itself", got)
			}
		})
	}
	if got := denial.Error(); !strings.Contains(got, denial.Message) {
		t.Errorf("Error() = %q, want it to carry the message", got)
	}
}

// TestPolicyConcurrentUse checks under -race that parallel clicks sharing the
// group cache are safe.
func TestPolicyConcurrentUse(t *testing.T) {
	ctx := context.Background()
	groups := defaultGroups()
	p, _ := newPolicy(authz.Config{Requesters: []string{socGroup}, Approvers: []string{leadsGroup}}, groups, cacheTTL)

	errs := make(chan error, 60)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { errs <- p.CanRequest(ctx, requester, "CSOC") })
		wg.Go(func() { errs <- p.CanApprove(ctx, leadB, openedUnder(p, requester)) })
		wg.Go(func() { errs <- p.CanReject(ctx, "ULEAD3", requester) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent check refused: %v", err)
		}
	}
}

func TestCheckNotTarget(t *testing.T) {
	tests := []struct {
		name          string
		actor, target string
		want          authz.Reason // "" means allowed
	}{
		{"different people", "lead@example.com", "alice@example.com", ""},
		{"same email", "alice@example.com", "alice@example.com", authz.SelfTarget},
		{"same email, other case", "Alice@Example.com", "alice@EXAMPLE.com", authz.SelfTarget},
		{"actor email unknown", "", "alice@example.com", authz.EmailUnknown},
		{"target email unknown", "lead@example.com", "", authz.EmailUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := authz.CheckNotTarget(tt.actor, tt.target)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckNotTarget = %v, want allowed", err)
				}
				return
			}
			denied, ok := authz.IsDenied(err)
			if !ok || denied.Reason != tt.want {
				t.Fatalf("CheckNotTarget = %v, want denial %s", err, tt.want)
			}
		})
	}
}
