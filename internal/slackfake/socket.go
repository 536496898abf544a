package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	wsWriteTimeout = 5 * time.Second
	wsReadLimit    = 1 << 20
)

type wsConn struct {
	id      int
	ws      *websocket.Conn
	writeMu sync.Mutex // gorilla allows one writer at a time
	done    chan struct{}
}

func (c *wsConn) write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("write frame to connection %d: %w", c.id, err)
	}
	return nil
}

type sentEnvelope struct {
	frame        []byte
	sentAt       time.Time
	retryAttempt int
}

type debugInfo struct {
	Host                      string `json:"host"`
	BuildNumber               int    `json:"build_number,omitempty"`
	ApproximateConnectionTime int    `json:"approximate_connection_time,omitempty"`
}

type helloFrame struct {
	Type           string    `json:"type"`
	NumConnections int       `json:"num_connections"`
	DebugInfo      debugInfo `json:"debug_info"`
	ConnectionInfo struct {
		AppID string `json:"app_id"`
	} `json:"connection_info"`
}

type disconnectFrame struct {
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	DebugInfo debugInfo `json:"debug_info"`
}

type envelopeFrame struct {
	EnvelopeID             string          `json:"envelope_id"`
	Payload                json.RawMessage `json:"payload"`
	Type                   string          `json:"type"`
	AcceptsResponsePayload bool            `json:"accepts_response_payload"`
}

func hostName(connID int) string { return fmt.Sprintf("applink-fake-%d", connID) }

// serveLink is the websocket URL apps.connections.open hands out. Each
// ticket works once, so every reconnect goes through apps.connections.open.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	if !s.redeemTicket(r.URL.Query().Get("ticket")) {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	ws.SetReadLimit(wsReadLimit)
	c, ok := s.registerConn(ws)
	if !ok {
		_ = ws.Close()
		return
	}
	defer s.wg.Done()
	defer s.connGone(c)

	if err := s.sendHello(c); err != nil {
		return
	}
	s.wg.Add(1)
	go s.pingLoop(c)
	s.readLoop(c)
}

func (s *Server) redeemTicket(ticket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tickets[ticket] {
		return false
	}
	delete(s.tickets, ticket)
	return true
}

// registerConn counts the handler in s.wg under s.mu, so close() cannot
// start waiting before the Add.
func (s *Server) registerConn(ws *websocket.Conn) (*wsConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	s.nextConn++
	c := &wsConn{id: s.nextConn, ws: ws, done: make(chan struct{})}
	s.conns[c.id] = c
	return c, true
}

func (s *Server) connGone(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	delete(s.live, c.id)
	s.notifyLocked()
	s.mu.Unlock()
	close(c.done)
	_ = c.ws.Close()
}

// sendHello makes the connection live only after hello is on the wire, so
// no envelope can overtake it.
func (s *Server) sendHello(c *wsConn) error {
	s.mu.Lock()
	hello := helloFrame{
		Type:           "hello",
		NumConnections: len(s.live) + 1,
		DebugInfo:      debugInfo{Host: hostName(c.id), BuildNumber: 1, ApproximateConnectionTime: 18060},
	}
	s.mu.Unlock()
	hello.ConnectionInfo.AppID = AppID
	frame, err := json.Marshal(hello)
	if err != nil {
		return fmt.Errorf("encode hello: %w", err)
	}
	if err := c.write(frame); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[c.id] = c
	s.hellos++
	s.notifyLocked()
	return nil
}

// pingLoop sends websocket PINGs; slack-go drops a connection that goes
// without one for its ping interval.
func (s *Server) pingLoop(c *wsConn) {
	defer s.wg.Done()
	ticker := time.NewTicker(s.cfg.pingInterval)
	defer ticker.Stop()
	for {
		if !s.noPings.Load() {
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(wsWriteTimeout)); err != nil {
				return
			}
		}
		select {
		case <-c.done:
			return
		case <-ticker.C:
		}
	}
}

func (s *Server) readLoop(c *wsConn) {
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		s.recordFrame(c.id, typ, data)
	}
}

// recordFrame files what the bot sent: an ack of an envelope the fake sent,
// or an unknown frame.
func (s *Server) recordFrame(connID, typ int, data []byte) {
	envelopeID, payload, isAck := parseAck(typ, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if env, known := s.envelopes[envelopeID]; isAck && known {
		s.acks = append(s.acks, Ack{EnvelopeID: envelopeID, Payload: payload, At: time.Now(), SentAt: env.sentAt, ConnID: connID})
		return
	}
	s.unknown = append(s.unknown, slices.Clone(data))
}

// parseAck accepts exactly Slack's ack shape: {"envelope_id": "...",
// "payload": {...}} with payload optional.
func parseAck(typ int, data []byte) (envelopeID string, payload json.RawMessage, ok bool) {
	if typ != websocket.TextMessage {
		return "", nil, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return "", nil, false
	}
	for k := range fields {
		if k != "envelope_id" && k != "payload" {
			return "", nil, false
		}
	}
	if json.Unmarshal(fields["envelope_id"], &envelopeID) != nil || envelopeID == "" {
		return "", nil, false
	}
	if p := fields["payload"]; len(p) > 0 && string(p) != "null" {
		payload = slices.Clone(p)
	}
	return envelopeID, payload, true
}

// WaitConnected waits until n connections are live: they got hello and
// have not been disconnected or dropped.
func (s *Server) WaitConnected(ctx context.Context, n int) error {
	return s.waitFor(ctx, fmt.Sprintf("%d live connections", n),
		func() bool { return len(s.live) >= n },
		func() string { return fmt.Sprintf("%d live, %d hellos in total", len(s.live), s.hellos) })
}

// WaitHellos waits until total connections have received hello since the
// fake started, e.g. to see a reconnect.
func (s *Server) WaitHellos(ctx context.Context, total int) error {
	return s.waitFor(ctx, fmt.Sprintf("%d hellos", total),
		func() bool { return s.hellos >= total },
		func() string { return fmt.Sprintf("%d hellos", s.hellos) })
}

// Hellos is how many connections have received hello so far.
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// ConnectionIDs lists the live connections, oldest first.
func (s *Server) ConnectionIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// RouteTo sends every later envelope to connection id (waiting while it is
// not live); 0 restores round-robin over the live connections.
func (s *Server) RouteTo(connID int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.route = connID
}

// StopPings stops pinging every connection, current and future.
func (s *Server) StopPings() { s.noPings.Store(true) }

// ResumePings undoes StopPings.
func (s *Server) ResumePings() { s.noPings.Store(false) }

// pickConnLocked chooses the connection for the next envelope, the way
// Slack hands each envelope to one of the app's connections.
func (s *Server) pickConnLocked() *wsConn {
	if s.route != 0 {
		return s.live[s.route]
	}
	if len(s.live) == 0 {
		return nil
	}
	ids := make([]int, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	next := ids[0]
	for _, id := range ids {
		if id > s.lastRoute {
			next = id
			break
		}
	}
	s.lastRoute = next
	return s.live[next]
}

// deliver writes frame to a live connection, waiting for one if needed.
// The envelope is recorded as sent before the write so an ack cannot beat it.
func (s *Server) deliver(ctx context.Context, frame []byte, envelopeID string, retryAttempt int) error {
	for {
		var c *wsConn
		err := s.waitFor(ctx, "a live Socket Mode connection",
			func() bool {
				if c = s.pickConnLocked(); c == nil {
					return false
				}
				if envelopeID != "" {
					s.envelopes[envelopeID] = &sentEnvelope{frame: frame, sentAt: time.Now(), retryAttempt: retryAttempt}
				}
				return true
			},
			func() string { return fmt.Sprintf("%d live connections", len(s.live)) })
		if err != nil {
			return err
		}
		if err := c.write(frame); err == nil {
			return nil
		}
		// The socket died under us; take it out of rotation and try another.
		s.retire(c)
	}
}

func (s *Server) retire(c *wsConn) {
	s.mu.Lock()
	delete(s.live, c.id)
	s.notifyLocked()
	s.mu.Unlock()
	_ = c.ws.Close()
}

// SendEnvelope writes raw (malformed frames too) to the next connection. A
// JSON object with an envelope_id is tracked so acks and Redeliver work.
func (s *Server) SendEnvelope(ctx context.Context, raw []byte) error {
	var probe struct {
		EnvelopeID   string `json:"envelope_id"`
		RetryAttempt int    `json:"retry_attempt"`
	}
	_ = json.Unmarshal(raw, &probe)
	return s.deliver(ctx, slices.Clone(raw), probe.EnvelopeID, probe.RetryAttempt)
}

// Redeliver sends an envelope again, as Slack does when no ack came in
// time: same envelope_id, retry_attempt incremented, retry_reason "timeout".
func (s *Server) Redeliver(ctx context.Context, envelopeID string) error {
	s.mu.Lock()
	env, ok := s.envelopes[envelopeID]
	var frame []byte
	attempt := 0
	if ok {
		attempt = env.retryAttempt + 1
		frame = env.frame
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("redeliver %s: %w", envelopeID, ErrUnknownEnvelope)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil {
		return fmt.Errorf("redeliver %s: decode envelope: %w", envelopeID, err)
	}
	fields["retry_attempt"] = json.RawMessage(fmt.Sprint(attempt))
	fields["retry_reason"] = json.RawMessage(`"timeout"`)
	again, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("redeliver %s: encode envelope: %w", envelopeID, err)
	}
	return s.deliver(ctx, again, envelopeID, attempt)
}

// SendDisconnect sends a disconnect frame with reason ("warning",
// "refresh_requested" or "link_disabled") to every live connection, waiting
// for one if there is none. Those connections get no more envelopes.
func (s *Server) SendDisconnect(ctx context.Context, reason string) error {
	switch reason {
	case "warning", "refresh_requested", "link_disabled":
	default:
		return fmt.Errorf("send disconnect %q: %w", reason, ErrBadReason)
	}
	var conns []*wsConn
	err := s.waitFor(ctx, "a live Socket Mode connection",
		func() bool {
			if len(s.live) == 0 {
				return false
			}
			for _, c := range s.live {
				conns = append(conns, c)
			}
			s.live = map[int]*wsConn{}
			s.notifyLocked()
			return true
		}, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range conns {
		frame, err := json.Marshal(disconnectFrame{Type: "disconnect", Reason: reason, DebugInfo: debugInfo{Host: hostName(c.id)}})
		if err == nil {
			err = c.write(frame)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("send disconnect: %w", err)
	}
	return nil
}

// DropConnections closes every socket abruptly, without a close frame.
func (s *Server) DropConnections() {
	s.mu.Lock()
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
}
