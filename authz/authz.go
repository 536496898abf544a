// Package authz decides who may request, approve and cancel risk resets.
// It answers with Slack IDs only, never names, and denies by default. It
// does not talk to Slack: user-group membership comes through the
// GroupMembers interface, cached briefly so that removing someone from a
// group takes effect soon.
package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// GroupMembers looks up the user IDs in a Slack user group.
type GroupMembers interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Config lists the Slack IDs the policy is built from. Requesters and
// Approvers hold user IDs (U…, W…) and user-group IDs (S…).
type Config struct {
	Requesters []string
	Approvers  []string
	Channels   []string // empty: the command works in any channel
}

// Reason says why an action was refused; callers pick the words shown to
// the user from it.
type Reason string

// The reasons an action is refused.
const (
	NotRequester   Reason = "not_requester"
	WrongChannel   Reason = "wrong_channel"
	NotApprover    Reason = "not_approver"
	SelfApproval   Reason = "self_approval"
	NotParticipant Reason = "not_participant"
	SelfTarget     Reason = "self_target"
	EmailUnknown   Reason = "email_unknown"
	// NoApprovers: the request needs an approver, and none is configured.
	NoApprovers Reason = "no_approvers"
)

// DeniedError is a refusal. Message is safe to show to the person refused.
type DeniedError struct {
	Reason  Reason
	Message string
}

func (e *DeniedError) Error() string { return "denied: " + e.Message }

// IsDenied reports whether err is a refusal (as opposed to a failure to
// decide, such as a group lookup error).
func IsDenied(err error) (*DeniedError, bool) {
	return errors.AsType[*DeniedError](err)
}

// Policy answers authorization questions. It is safe for concurrent use.
type Policy struct {
	cfg    Config
	groups *groupCache
}

// New returns a policy for cfg. Group membership is looked up through
// lookup and cached for cacheTTL (0 disables the cache); now is the clock.
func New(cfg Config, lookup GroupMembers, cacheTTL time.Duration, now func() time.Time) *Policy {
	return &Policy{
		cfg:    cfg,
		groups: &groupCache{lookup: lookup, ttl: cacheTTL, now: now, entries: make(map[string]groupEntry)},
	}
}

// RequiresApprover reports whether a second person must approve; without
// approvers the requester confirms their own request.
func (p *Policy) RequiresApprover() bool { return len(p.cfg.Approvers) > 0 }

// ApproverGroups returns the configured approver user groups, for showing
// who may approve.
func (p *Policy) ApproverGroups() []string {
	return slices.DeleteFunc(slices.Clone(p.cfg.Approvers), isUser)
}

// ApproverUsers returns the configured individual approvers.
func (p *Policy) ApproverUsers() []string {
	return slices.DeleteFunc(slices.Clone(p.cfg.Approvers), isGroup)
}

// CanRequest decides whether userID may open a request in channelID.
func (p *Policy) CanRequest(ctx context.Context, userID, channelID string) error {
	if len(p.cfg.Channels) > 0 && !slices.Contains(p.cfg.Channels, channelID) {
		return &DeniedError{Reason: WrongChannel, Message: "`/risk-reset` cannot be used in this channel; use " + channelList(p.cfg.Channels) + "."}
	}
	ok, err := p.member(ctx, userID, p.cfg.Requesters)
	if err != nil {
		return fmt.Errorf("checking requesters: %w", err)
	}
	if !ok {
		return &DeniedError{Reason: NotRequester, Message: "you are not allowed to request risk resets. Ask your Slack admin to add you (or a group you are in) to REQUESTER_IDS."}
	}
	return nil
}

// Request is what the policy needs to know of the request a click acts on.
type Request struct {
	Requester string
	// NeedsApprover is the rule the request was opened under: an approver
	// other than the requester must approve it. It comes from the stored
	// request, not from the configuration now, so a configuration changed
	// since (a restart, another replica) cannot let the requester confirm
	// a request whose card said someone else must approve it.
	NeedsApprover bool
}

// CanApprove decides whether actor may approve r. The stricter of r's own
// rule and the configuration now applies: when either calls for an
// approver, only an approver who is not the requester may approve, and
// when r needs one but none is configured any more, nobody may.
func (p *Policy) CanApprove(ctx context.Context, actor string, r Request) error {
	switch {
	case r.NeedsApprover && !p.RequiresApprover():
		return &DeniedError{Reason: NoApprovers, Message: fmt.Sprintf("this request was opened needing an approver other than the requester, "+
			"but no approvers are configured now (APPROVER_IDS changed since), so nobody can approve it. "+
			"<@%s> can cancel it and run `/risk-reset` again.", r.Requester)}
	case r.NeedsApprover || p.RequiresApprover():
		return p.canApproveOthers(ctx, actor, r)
	}
	return p.canConfirmOwn(ctx, actor, r.Requester)
}

// canApproveOthers is the two-person rule: an approver, never the requester.
func (p *Policy) canApproveOthers(ctx context.Context, actor string, r Request) error {
	if actor == r.Requester {
		msg := "you cannot approve your own request; another team lead must approve it."
		if !r.NeedsApprover {
			msg = "approvers are configured now (the configuration changed since this request was opened), so you cannot confirm your own request; an approver must approve it."
		}
		return &DeniedError{Reason: SelfApproval, Message: msg}
	}
	ok, err := p.member(ctx, actor, p.cfg.Approvers)
	if err != nil {
		return fmt.Errorf("checking approvers: %w", err)
	}
	if !ok {
		return &DeniedError{Reason: NotApprover, Message: "you are not an approver for risk resets."}
	}
	return nil
}

// canConfirmOwn is the rule without approvers: the requester confirms.
func (p *Policy) canConfirmOwn(ctx context.Context, actor, requester string) error {
	if actor != requester {
		return &DeniedError{Reason: NotParticipant, Message: fmt.Sprintf("only <@%s>, who asked for this reset, can confirm it.", requester)}
	}
	// Confirming starts the reset, so the requester must still be allowed
	// to request: removal from the list takes effect here too.
	ok, err := p.member(ctx, actor, p.cfg.Requesters)
	if err != nil {
		return fmt.Errorf("checking requesters: %w", err)
	}
	if !ok {
		return &DeniedError{Reason: NotRequester, Message: "you are no longer allowed to request risk resets, so you cannot confirm this one."}
	}
	return nil
}

// CanReject decides whether actor may reject a request opened by
// requester: the requester may always cancel; an approver may deny.
func (p *Policy) CanReject(ctx context.Context, actor, requester string) error {
	if actor == requester {
		return nil
	}
	if !p.RequiresApprover() {
		return &DeniedError{Reason: NotParticipant, Message: fmt.Sprintf("only <@%s>, who asked for this reset, can cancel it.", requester)}
	}
	ok, err := p.member(ctx, actor, p.cfg.Approvers)
	if err != nil {
		return fmt.Errorf("checking approvers: %w", err)
	}
	if !ok {
		return &DeniedError{Reason: NotApprover, Message: "only the requester or an approver can reject this request."}
	}
	return nil
}

// CheckNotTarget refuses when the person acting is the user whose risk
// score would be reset: nobody requests or approves their own reset. The
// two addresses are compared case-insensitively; when either is unknown the
// check cannot be made, and that is a refusal too, since the rule must hold.
func CheckNotTarget(actorEmail, targetEmail string) error {
	switch {
	case actorEmail == "":
		return &DeniedError{Reason: EmailUnknown, Message: "I cannot read your Slack email address (the app needs the users:read.email scope), so I cannot check that this is not your own risk score. Nothing was changed."}
	case targetEmail == "":
		return &DeniedError{Reason: EmailUnknown, Message: "Cloudflare did not give this user's email (the API token needs Zero Trust PII Read), so I cannot check that this is not your own risk score. Nothing was changed."}
	case strings.EqualFold(strings.TrimSpace(actorEmail), strings.TrimSpace(targetEmail)):
		return &DeniedError{Reason: SelfTarget, Message: "nobody may request or approve a reset of their own risk score; ask a colleague. Nothing was changed."}
	}
	return nil
}

// member reports whether userID is listed in ids directly or through one of
// the user groups listed there.
func (p *Policy) member(ctx context.Context, userID string, ids []string) (bool, error) {
	if slices.Contains(ids, userID) {
		return true, nil
	}
	var errs []error
	for _, id := range ids {
		if !isGroup(id) {
			continue
		}
		members, err := p.groups.members(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.Contains(members, userID) {
			return true, nil
		}
	}
	// A failed lookup must not turn into a silent "no": the caller says the
	// check could not be made instead of telling someone they lack rights.
	return false, errors.Join(errs...)
}

func isGroup(id string) bool { return strings.HasPrefix(id, "S") }
func isUser(id string) bool  { return !isGroup(id) }

func channelList(ids []string) string {
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = "<#" + id + ">"
	}
	return strings.Join(refs, " or ")
}

type groupEntry struct {
	members []string
	fetched time.Time
}

type groupCache struct {
	lookup  GroupMembers
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]groupEntry
}

func (c *groupCache) members(ctx context.Context, groupID string) ([]string, error) {
	c.mu.Lock()
	e, ok := c.entries[groupID]
	c.mu.Unlock()
	if ok && c.now().Sub(e.fetched) < c.ttl {
		return e.members, nil
	}
	members, err := c.lookup.GroupMembers(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("looking up members of user group %s: %w", groupID, err)
	}
	c.mu.Lock()
	c.entries[groupID] = groupEntry{members: members, fetched: c.now()}
	c.mu.Unlock()
	return members, nil
}
