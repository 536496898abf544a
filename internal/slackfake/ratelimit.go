package slackfake

import "time"

// WithChannelRateLimit enforces Slack's "one message per second per
// channel" rule, with perChannel as the interval: a chat.postMessage to a
// channel that got a message less than perChannel ago answers HTTP 429
// with Retry-After in whole seconds (at least one), as Slack does. Only
// messages the fake stored count, so a refused or rate-limited post does
// not extend the wait. The interval runs on the wall clock, not on
// WithClock's clock, because clients wait Retry-After out in real time.
func WithChannelRateLimit(perChannel time.Duration) Option {
	return func(c *config) {
		if perChannel > 0 {
			c.channelLimit = &channelLimit{every: perChannel, last: map[string]time.Time{}}
		}
	}
}

// channelLimit remembers when each channel last got a message. Its
// methods run under the Server's lock.
type channelLimit struct {
	every time.Duration
	last  map[string]time.Time
}

// checkLocked returns the 429 answer for a post to channel, or nil when
// the post may go ahead.
func (l *channelLimit) checkLocked(channel string) *reply {
	if l == nil {
		return nil
	}
	last, ok := l.last[channel]
	if !ok {
		return nil
	}
	wait := l.every - time.Since(last)
	if wait <= 0 {
		return nil
	}
	rep := fault{kind: faultRateLimit, retryAfter: wait}.reply()
	return &rep
}

// postedLocked starts channel's interval: a message was stored in it.
func (l *channelLimit) postedLocked(channel string) {
	if l != nil {
		l.last[channel] = time.Now()
	}
}
