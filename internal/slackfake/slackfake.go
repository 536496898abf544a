// Package slackfake is an in-process fake of Slack for tests: the Web API
// methods the bot uses, the response_url endpoint, and a Socket Mode
// websocket.
//
// It speaks Slack's wire formats (form-encoded and JSON requests,
// {"ok":false,"error":"..."} replies, HTTP 429 with Retry-After, Socket Mode
// hello/disconnect/envelope frames and acks) and enforces Slack's own limits,
// so code that passes against the fake does not depend on behaviour real
// Slack would refuse. Every recorded event can be waited for with a context
// deadline; nothing in the fake needs a sleep.
//
// Typical use:
//
//	fake := slackfake.New(t)
//	fake.AddChannel(slackfake.Channel{ID: "C0001", Name: "risk-ops", BotIsMember: true})
//	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()), slack.OptionAppLevelToken(fake.AppToken()))
//	client := socketmode.New(api)
//	go client.RunContext(ctx)
//	fake.WaitConnected(ctx, 1)
//	id, _ := fake.SendSlashCommand(ctx, slackfake.SlashCommand{UserID: "U0001", ChannelID: "C0001", Text: "alice@example.com"})
//	fake.WaitAck(ctx, id)
package slackfake

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Identity of the fake workspace and app, as they appear in payloads.
const (
	TeamID            = "T0001"
	TeamDomain        = "example"
	TeamName          = "Example"
	AppID             = "A0001"
	BotUserID         = "U0BOT"
	BotUserName       = "riskbot"
	BotID             = "B0001"
	VerificationToken = "FAKEverificationTOKEN0000"

	// DefaultBotToken and DefaultAppToken carry the prefixes real tokens have,
	// so code that checks prefixes at start accepts them.
	DefaultBotToken = "xoxb-0000000000-0000000000000-fakebottokenfakebottoken"
	DefaultAppToken = "xapp-1-A0001-0000000000000-fakeapptokenfakeapptoken"

	// TriggerTTL is how long a trigger_id can be exchanged for a modal.
	TriggerTTL = 3 * time.Second

	// DefaultPingInterval is how often the fake pings each Socket Mode
	// connection; slack-go's watchdog expects a ping within 30s by default.
	DefaultPingInterval = 5 * time.Second
)

// Errors returned by the test-facing methods.
var (
	ErrClosed          = errors.New("slackfake: server closed")
	ErrUnknownEnvelope = errors.New("slackfake: unknown envelope")
	ErrNoSuchMessage   = errors.New("slackfake: no such message")
	ErrNoSuchAction    = errors.New("slackfake: message has no element with that action_id")
	ErrNoSuchView      = errors.New("slackfake: no such view")
	ErrNoSuchInput     = errors.New("slackfake: view has no input with that block_id/action_id")
	ErrBadReason       = errors.New("slackfake: disconnect reason must be warning, refresh_requested or link_disabled")
)

// User is a workspace member known to users.info.
type User struct {
	ID, Name, RealName, Email string
	Deleted, IsBot            bool
}

// Channel is a conversation the bot may post to.
type Channel struct {
	ID, Name                       string
	BotIsMember, Archived, Private bool
}

// Call is one recorded Web API (or response_url) request. Form holds the
// form or query values; for JSON bodies it holds the top-level fields, with
// objects and arrays re-encoded as JSON strings, and JSON holds the body.
type Call struct {
	Method string
	Form   url.Values
	JSON   map[string]any
	At     time.Time
	Status int    // HTTP status the fake answered with
	Error  string // Slack error code when the answer was ok:false
}

// Message is a channel message as Slack currently shows it.
type Message struct {
	Channel, TS, ThreadTS, Text string
	Blocks                      json.RawMessage
	Updates                     int
	Deleted                     bool
}

// Ephemeral is a chat.postEphemeral message, visible to User only.
type Ephemeral struct {
	Channel, User, TS, ThreadTS, Text string
	Blocks                            json.RawMessage
}

// ResponsePost is an accepted POST to a response_url the fake handed out.
type ResponsePost struct {
	URL                             string
	UserID, ChannelID               string // who triggered the interaction, and where
	MessageTS                       string // the message a block action came from, if any
	Text, ResponseType, ThreadTS    string
	Blocks                          json.RawMessage
	ReplaceOriginal, DeleteOriginal bool
	Ephemeral                       bool // shown only to UserID
	Body                            json.RawMessage
	At                              time.Time
}

// OpenedView is a modal opened with views.open.
type OpenedView struct {
	ID, TriggerID, CallbackID, PrivateMetadata, Title string
	View                                              json.RawMessage // as the fake stored it, with id, state, hash
	At                                                time.Time
	Updates                                           int // views.update calls applied
}

// Ack is a Socket Mode acknowledgement the bot sent.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // nil when the ack had no payload
	At         time.Time
	SentAt     time.Time // when the envelope was (last) sent
	ConnID     int
}

// Hook answers a Web API call instead of the fake when handled is true.
// A body of []byte, json.RawMessage or string is written as is, anything else
// as JSON; status 0 means 200.
type Hook func(method string, form url.Values) (status int, body any, handled bool)

// Option configures a Server.
type Option func(*config)

type config struct {
	botToken, appToken string
	emailScope         bool
	clock              func() time.Time
	pingInterval       time.Duration
	channelLimit       *channelLimit // nil: no per-channel message limit
}

// WithBotToken sets the token Web API calls other than apps.connections.open must carry.
func WithBotToken(token string) Option { return func(c *config) { c.botToken = token } }

// WithAppToken sets the app-level token apps.connections.open must carry.
func WithAppToken(token string) Option { return func(c *config) { c.appToken = token } }

// WithoutEmailScope mimics an app without users:read.email: users.info
// answers without profile.email.
func WithoutEmailScope() Option { return func(c *config) { c.emailScope = false } }

// WithClock replaces the clock Slack-side rules use: trigger_id expiry,
// action_ts and view hashes. Recorded times (Call.At, Ack.At and SentAt,
// ...) stay on the wall clock so ack latency can be measured.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithPingInterval sets how often each Socket Mode connection is pinged.
func WithPingInterval(d time.Duration) Option { return func(c *config) { c.pingInterval = d } }

// Server is the fake. All methods are safe for concurrent use.
type Server struct {
	cfg      config
	srv      *httptest.Server
	upgrader websocket.Upgrader
	wg       sync.WaitGroup // connection handlers and pingers
	noPings  atomic.Bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every recorded change
	closed  bool
	seq     int // source of timestamps and ids

	hook   Hook
	faults map[string][]fault

	users    map[string]User
	groups   map[string][]string
	channels map[string]*channelState

	calls         []Call
	messages      []*storedMessage
	ephemerals    []Ephemeral
	responsePosts []ResponsePost
	responseURLs  map[string]responseTarget
	triggers      map[string]*trigger
	views         []*storedView

	tickets   map[string]bool
	conns     map[int]*wsConn // every open websocket
	live      map[int]*wsConn // connections that got hello and may receive envelopes
	nextConn  int
	hellos    int
	lastRoute int
	route     int
	envelopes map[string]*sentEnvelope
	acks      []Ack
	unknown   [][]byte
}

// New starts a fake on a loopback port and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{
		botToken:     DefaultBotToken,
		appToken:     DefaultAppToken,
		emailScope:   true,
		clock:        time.Now,
		pingInterval: DefaultPingInterval,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	if cfg.pingInterval <= 0 {
		cfg.pingInterval = DefaultPingInterval
	}
	s := &Server{
		cfg:          cfg,
		changed:      make(chan struct{}),
		faults:       map[string][]fault{},
		users:        map[string]User{},
		groups:       map[string][]string{},
		channels:     map[string]*channelState{},
		responseURLs: map[string]responseTarget{},
		triggers:     map[string]*trigger{},
		tickets:      map[string]bool{},
		conns:        map[int]*wsConn{},
		live:         map[int]*wsConn{},
		envelopes:    map[string]*sentEnvelope{},
		upgrader: websocket.Upgrader{
			// slack-go sends Origin https://api.slack.com, which is not our host.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/link/", s.serveLink)
	mux.HandleFunc("/response/", s.serveResponseURL)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.close)
	return s
}

// APIURL is the Web API base with its trailing slash, for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// BotToken is the bot token the fake accepts.
func (s *Server) BotToken() string { return s.cfg.botToken }

// AppToken is the app-level token the fake accepts.
func (s *Server) AppToken() string { return s.cfg.appToken }

func (s *Server) now() time.Time { return s.cfg.clock() }

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.live = map[int]*wsConn{}
	s.notifyLocked()
	s.mu.Unlock()

	for _, c := range conns {
		_ = c.ws.Close()
	}
	s.wg.Wait()
	s.srv.Close()
}

// AddUser adds or replaces a workspace member.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	s.notifyLocked()
}

// SetGroupMembers sets the members usergroups.users.list returns for groupID.
func (s *Server) SetGroupMembers(groupID string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[groupID] = append([]string{}, members...)
	s.notifyLocked()
}

// AddChannel adds or replaces a channel.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[c.ID] = &channelState{Channel: c}
	s.notifyLocked()
}

// nextSeqLocked returns a number unique within this server.
func (s *Server) nextSeqLocked() int {
	s.seq++
	return s.seq
}
