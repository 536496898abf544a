package bot

import "testing"

func TestAuthWatchStopsOnlyForARevokedBotToken(t *testing.T) {
	tests := []struct {
		method, code string
		stops        bool
	}{
		{"chat.postMessage", "token_revoked", true},
		{"users.info", "invalid_auth", true},
		{"chat.update", "account_inactive", true},
		{"chat.postMessage", "not_in_channel", false},
		{"users.info", "missing_scope", false},
		// The app token's connection errors are Run's to judge.
		{"apps.connections.open", "invalid_auth", false},
	}
	for _, tt := range tests {
		w := NewAuthWatch()
		w.Observe(tt.method, tt.code)
		select {
		case err := <-w.failures():
			if !tt.stops {
				t.Errorf("%s %s stopped the bot: %v", tt.method, tt.code, err)
			}
		default:
			if tt.stops {
				t.Errorf("%s %s did not stop the bot", tt.method, tt.code)
			}
		}
	}
	var none *AuthWatch
	none.Observe("chat.postMessage", "token_revoked") // no watch: nothing happens
	if none.failures() != nil {
		t.Error("a nil watch has a failure channel")
	}
}
